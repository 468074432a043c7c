import type pg from 'pg';

/**
 * `COPY … FROM STDIN` on one pg client without an extra dependency: a pg "submittable" (the
 * interface pg-cursor and pg-query-stream use) that answers the server's CopyInResponse with the
 * chunks, produced lazily, honouring the socket's back-pressure. Text (bench/store-vs-copy.ts) and
 * binary (copy-binary.ts) COPY both send through it.
 * @example const rows = await copyFromChunks(client, 'copy t (a, b) from stdin', chunks);
 */
export function copyFromChunks(client: pg.Client, statement: string, chunks: Iterable<Buffer>): Promise<number> {
  const copy = new CopyFrom(statement, chunks);
  (client as unknown as { query(submittable: unknown): void }).query(copy);
  return copy.done;
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
