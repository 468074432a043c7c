/**
 * Domain errors: services throw these; only the HTTP layer and the CLI translate them
 * (to problem+json or to an exit code and message).
 */
export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

export type FieldError = { path: string; message: string };

export class InvalidInputError extends Error {
  readonly errors: FieldError[];
  constructor(message: string, errors: FieldError[] = []) {
    super(message);
    this.name = 'InvalidInputError';
    this.errors = errors;
  }
}

/** The input is larger than the configured limit (an upload over VOXTRACE_MAX_UPLOAD_MB). */
export class PayloadTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadTooLargeError';
  }
}

/** The input is not of a kind voxtrace can take (audio that is neither WAV nor MP3, a body that is not a form). */
export class UnsupportedMediaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedMediaError';
  }
}
