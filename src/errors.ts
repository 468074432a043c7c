/**
 * Errors whose message is written for the person who caused them: a wrong variable, a busy
 * database, an unknown id, a bad request. The CLI prints any of them as one line
 * (`src/commands/report.ts`), and the HTTP layer maps the domain errors below to problems
 * (`src/http/app.ts`). Anything else is a bug: logged with its stack, answered as `internal`.
 */
export class VoxtraceError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Domain errors: services throw these; only the HTTP layer and the CLI translate them. */
export class NotFoundError extends VoxtraceError {}

export class ConflictError extends VoxtraceError {}

export type FieldError = { path: string; message: string };

export class InvalidInputError extends VoxtraceError {
  readonly errors: FieldError[];
  constructor(message: string, errors: FieldError[] = []) {
    super(message);
    this.errors = errors;
  }
}

/** The input is larger than the configured limit (an upload over VOXTRACE_MAX_UPLOAD_MB). */
export class PayloadTooLargeError extends VoxtraceError {}

/** The input is not of a kind voxtrace can take (audio that is neither WAV nor MP3, a body that is not a form). */
export class UnsupportedMediaError extends VoxtraceError {}
