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
