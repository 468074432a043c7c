import type pg from 'pg';

/**
 * `COPY … FROM STDIN (FORMAT binary)` on one pg client without an extra dependency: rows are
 * encoded into PostgreSQL's binary COPY format (header, per row a field count and length-prefixed
 * fields, trailer) in chunks of about 1 MiB, sent through a pg "submittable" (the interface
 * pg-cursor uses) that honours the socket's back-pressure.
 * @example await copyBinary(client, 'voiceprints', ['id', 'embedding'], rows, [uuidField, vectorField]);
 */
export async function copyBinary(client: pg.Client, table: string, columns: string[], chunks: Iterable<Buffer>) {
  const copy = new CopyFrom(`copy ${table} (${columns.join(', ')}) from stdin (format binary)`, framed(chunks));
  (client as unknown as { query(submittable: unknown): void }).query(copy);
  return copy.done;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);

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

  /** The rows so far, when they fill a chunk (or always, with `force`); the builder starts empty again. */
  take(force = false): Buffer | null {
    if (this.length === 0 || (!force && this.length < this.chunkBytes)) return null;
    const chunk = Buffer.from(this.buffer.subarray(0, this.length));
    this.length = 0;
    return chunk;
  }
}

class CopyFrom {
  readonly text: string;
  rowCount = 0;
  private readonly chunks: Iterable<Buffer>;
  private error: Error | null = null;
  private resolve!: (rows: number) => void;
  private reject!: (error: Error) => void;
  readonly done: Promise<number>;

  constructor(text: string, chunks: Iterable<Buffer>) {
    this.text = text;
    this.chunks = chunks;
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: PgConnection) {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: PgConnection) {
    void this.send(connection);
  }

  private async send(connection: PgConnection) {
    try {
      for (const chunk of this.chunks) {
        connection.sendCopyFromChunk(chunk);
        if (connection.stream.writableNeedDrain) {
          await new Promise((resolve) => connection.stream.once('drain', resolve));
        }
      }
      connection.endCopyFrom();
    } catch (error) {
      connection.sendCopyFail(error instanceof Error ? error.message : String(error));
    }
  }

  handleCommandComplete(message: { text: string }) {
    this.rowCount = Number(/COPY (\d+)/.exec(message.text)?.[1] ?? 0);
  }

  handleError(error: Error) {
    this.error = error;
  }

  handleReadyForQuery() {
    if (this.error) this.reject(this.error);
    else this.resolve(this.rowCount);
  }

  handleEmptyQuery() {}
  handleRowDescription() {}
  handleDataRow() {}
  handlePortalSuspended() {}
  handleCopyData() {}
}

type PgConnection = {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
  stream: NodeJS.WritableStream & { writableNeedDrain: boolean };
};
