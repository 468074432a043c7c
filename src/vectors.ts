/** L2 norm, accumulated in double precision. */
export function l2Norm(vector: readonly number[]): number {
  let sum = 0;
  for (const v of vector) sum += v * v;
  return Math.sqrt(sum);
}

/**
 * Splits a vector into its unit direction and its original norm, as voxtrace stores it
 * (cosine search on the unit vector; `unit × norm` gives back the upstream's values).
 * @example const { unit, norm } = normalise([3, 4]); // unit [0.6, 0.8], norm 5
 */
export function normalise(vector: readonly number[]): { unit: number[]; norm: number } {
  const norm = l2Norm(vector);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new RangeError('a zero or non-finite vector has no direction');
  return { unit: vector.map((v) => v / norm), norm };
}

/** Dot product of equally long vectors: their cosine when both are unit vectors. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] as number) * (b[i] as number);
  return sum;
}

/** Element-wise mean of equally long vectors. */
export function meanVector(vectors: readonly (readonly number[])[]): number[] {
  const first = vectors[0];
  if (!first) throw new RangeError('mean of no vectors');
  const mean = new Array<number>(first.length).fill(0);
  for (const vector of vectors) {
    for (let i = 0; i < mean.length; i++) mean[i] = (mean[i] as number) + (vector[i] as number) / vectors.length;
  }
  return mean;
}
