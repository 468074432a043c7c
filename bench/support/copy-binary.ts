import type pg from 'pg';
import { copyFromChunks } from './copy-from.ts';

/**
 * `COPY … FROM STDIN (FORMAT binary)` on one pg client without an extra dependency: rows are
 * encoded into PostgreSQL's binary COPY format (header, per row a field count and length-prefixed
 * fields, trailer) in chunks of about 1 MiB, sent by copyFromChunks (copy-from.ts).
 * @example await copyBinary(client, 'voiceprints', ['id', 'embedding'], rows, [uuidField, vectorField]);
 */
export async function copyBinary(client: pg.Client, table: string, columns: string[], chunks: Iterable<Buffer>) {
  return copyFromChunks(client, `copy ${table} (${columns.join(', ')}) from stdin (format binary)`, framed(chunks));
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);

/** The whole COPY stream of some rows in one buffer (header, rows, trailer): for PGlite's `/dev/blob`. */
export function copyBuffer(rows: BinaryRows): Buffer {
  return Buffer.concat([...framed([rows.take(true) ?? Buffer.alloc(0)])]);
}

function* framed(chunks: Iterable<Buffer>): Generator<Buffer> {
  const header = Buffer.alloc(SIGNATURE.length + 8);
  SIGNATURE.copy(header, 0);
  yield header; // flags and header-extension length: both 0
  yield* chunks;
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1);
  yield trailer;
}

/**
 * Builds binary COPY rows into a growing buffer and hands out ~1 MiB chunks. Each `row(n)` starts
 * a tuple of n fields; the field writers follow in column order.
 */
export class BinaryRows {
  private buffer = Buffer.alloc(1 << 21);
  private length = 0;
  readonly chunkBytes = 1 << 20;

  private ensure(bytes: number) {
    if (this.length + bytes <= this.buffer.length) return;
    const bigger = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }

  row(fields: number) {
    this.ensure(2);
    this.length = this.buffer.writeInt16BE(fields, this.length);
  }

  null() {
    this.ensure(4);
    this.length = this.buffer.writeInt32BE(-1, this.length);
  }

  /** 16 raw bytes of a uuid (`bytes` at `offset`). */
  uuid(bytes: Uint8Array, offset: number) {
    this.ensure(20);
    this.length = this.buffer.writeInt32BE(16, this.length);
    this.buffer.set(bytes.subarray(offset, offset + 16), this.length);
    this.length += 16;
  }

  /** A uuid from its text form. */
  uuidText(id: string) {
    this.ensure(20);
    this.length = this.buffer.writeInt32BE(16, this.length);
    this.length += this.buffer.write(id.replaceAll('-', ''), this.length, 'hex');
  }

  text(value: string | null) {
    if (value === null) return this.null();
    const bytes = Buffer.byteLength(value);
    this.ensure(4 + bytes);
    this.length = this.buffer.writeInt32BE(bytes, this.length);
    this.length += this.buffer.write(value, this.length);
  }

  int4(value: number) {
    this.ensure(8);
    this.length = this.buffer.writeInt32BE(4, this.length);
    this.length = this.buffer.writeInt32BE(value, this.length);
  }

  float8(value: number | null) {
    if (value === null) return this.null();
    this.ensure(12);
    this.length = this.buffer.writeInt32BE(8, this.length);
    this.length = this.buffer.writeDoubleBE(value, this.length);
  }

  /** timestamptz: microseconds since 2000-01-01 UTC. */
  timestamptz(ms: number | null) {
    if (ms === null) return this.null();
    this.ensure(12);
    this.length = this.buffer.writeInt32BE(8, this.length);
    this.length = this.buffer.writeBigInt64BE(BigInt(Math.round(ms - POSTGRES_EPOCH_MS)) * 1000n, this.length);
  }

  /** pgvector's binary form: int16 dimensions, int16 unused, then float4s. */
  vector(values: Float32Array, offset: number, dimensions: number) {
    const bytes = 4 + 4 * dimensions;
    this.ensure(4 + bytes);
    this.length = this.buffer.writeInt32BE(bytes, this.length);
    this.length = this.buffer.writeInt16BE(dimensions, this.length);
    this.length = this.buffer.writeInt16BE(0, this.length);
    for (let d = 0; d < dimensions; d++)
      this.length = this.buffer.writeFloatBE(values[offset + d] as number, this.length);
  }

  /**
   * pgvector's binary halfvec: int16 dimensions, int16 unused, then IEEE half floats. The values must
   * already be halves (Math.f16round): the bits are taken from their float32 form, not rounded again.
   */
  halfvec(values: Float32Array, offset: number, dimensions: number) {
    const bytes = 4 + 2 * dimensions;
    this.ensure(4 + bytes);
    this.length = this.buffer.writeInt32BE(bytes, this.length);
    this.length = this.buffer.writeInt16BE(dimensions, this.length);
    this.length = this.buffer.writeInt16BE(0, this.length);
    for (let d = 0; d < dimensions; d++) {
      this.length = this.buffer.writeUInt16BE(halfBits(values[offset + d] as number), this.length);
    }
  }

  /** The rows so far, when they fill a chunk (or always, with `force`); the builder starts empty again. */
  take(force = false): Buffer | null {
    if (this.length === 0 || (!force && this.length < this.chunkBytes)) return null;
    const chunk = Buffer.from(this.buffer.subarray(0, this.length));
    this.length = 0;
    return chunk;
  }
}

const float32 = new Float32Array(1);
const float32Bits = new Uint32Array(float32.buffer);

/** The IEEE half bits of a value that is exactly a half (normal, subnormal or zero). */
export function halfBits(value: number): number {
  float32[0] = value;
  const bits = float32Bits[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127;
  if (value === 0) return sign;
  if (exponent >= -14) return sign | ((exponent + 15) << 10) | ((bits >>> 13) & 0x3ff);
  return sign | Math.round(Math.abs(value) * 2 ** 24);
}
