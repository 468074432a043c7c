import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs on stderr, so stdout stays for command output (keys, `--json` lines).
 * Secrets never reach a log: the `redact` paths below catch the usual carriers.
 * @example const log = createLogger('info'); log.child({ recordingId }).info('stored');
 */
export function createLogger(level: string, destination: number = 2): Logger {
  return pino(
    {
      level,
      base: { service: 'voxtrace' },
      redact: {
        paths: ['authorization', 'req.headers.authorization', 'headers.authorization', '*.token', 'token', 'key'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: destination, sync: true }),
  );
}
