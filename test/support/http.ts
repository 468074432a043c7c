import net from 'node:net';
import { expect } from 'vitest';

export type ProblemBody = {
  type: string;
  title: string;
  status: number;
  detail: string;
  requestId: string;
  errors?: { path: string; message: string }[];
};

/**
 * Asserts an RFC 9457 problem answer (CONVENTIONS.md): status, content type, `type`, title,
 * detail and a request id echoed in `x-request-id`. Returns the body.
 */
export async function expectProblem(response: Response, status: number, code: string): Promise<ProblemBody> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = (await response.json()) as ProblemBody;
  expect(body).toMatchObject({
    type: `/problems/${code}`,
    status,
    title: expect.any(String),
    detail: expect.any(String),
  });
  expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
  expect(response.headers.get('x-request-id')).toBe(body.requestId);
  return body;
}

/** A TCP port free on 127.0.0.1 right now (for servers started in another process). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
