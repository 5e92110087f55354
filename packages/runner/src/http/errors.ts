import type { FieldError } from '@crm-sync/core';

/** An answer other than success, with a stable code. Its message is shown to the client: never a stack or a secret. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly errors?: FieldError[], readonly headers?: Record<string, string>) {
    super(message);
    this.name = 'HttpError';
  }

  toJSON(): { error: { code: string; message: string; errors?: FieldError[] } } {
    return { error: { code: this.code, message: this.message, ...(this.errors ? { errors: this.errors } : {}) } };
  }
}
