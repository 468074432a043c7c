import { InvalidInputError } from '../errors.ts';

/**
 * A query vector given in a request — an array of numbers or the upstream's string form of one —
 * checked and made a unit vector; `path` names the field in errors (`query.embedding`).
 * @example const unit = queryVectorUnit(body.query.embedding, 'query.embedding', DEEPFAKE_DIMENSIONS);
 */
export function queryVectorUnit(value: readonly number[] | string, path: string, dimensions: number): Float32Array {
  let values: unknown = value;
  if (typeof value === 'string') {
    try {
      values = JSON.parse(value);
    } catch {
      throw invalid(path, 'is not a JSON array of numbers');
    }
  }
  if (!Array.isArray(values)) throw invalid(path, 'must be an array of numbers');
  if (values.length !== dimensions) throw invalid(path, `must hold ${dimensions} numbers, got ${values.length}`);
  for (const [i, v] of values.entries()) {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw invalid(path, `value ${i} is ${JSON.stringify(v)}, not a finite number`);
  }
  const numbers = values as number[];
  const norm = Math.hypot(...numbers);
  if (!(norm > 0) || !Number.isFinite(norm)) throw invalid(path, 'is zero or too large: it has no direction');
  return Float32Array.from(numbers, (v) => v / norm);
}

function invalid(path: string, message: string) {
  return new InvalidInputError(`${path}: ${message}`, [{ path, message }]);
}
