import { type ServerType, serve } from '@hono/node-server';

/**
 * Listens on host:port (port 0 picks a free one) and resolves once the socket is bound.
 * @example const server = await listen(app, { host: '127.0.0.1', port: 0 }); await server.close();
 */
export function listen(
  app: { fetch: (request: Request) => Response | Promise<Response> },
  options: { host: string; port: number },
) {
  return new Promise<{ url: string; port: number; close: () => Promise<void> }>((resolve, reject) => {
    let server: ServerType;
    const onError = (error: Error) => reject(error);
    server = serve({ fetch: app.fetch, hostname: options.host, port: options.port }, (info) => {
      server.off('error', onError);
      const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
      resolve({
        url: `http://${host}:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            // idle keep-alive sockets would otherwise hold close() open
            if ('closeAllConnections' in server) server.closeAllConnections();
          }),
      });
    });
    server.once('error', onError);
  });
}
