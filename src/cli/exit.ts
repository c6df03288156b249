/** Ends a command with a given exit code after it has printed what it had to say. */
export class ExitError extends Error {
  constructor(public readonly code: number) {
    super(`exit ${code}`);
    this.name = 'ExitError';
  }
}

/** Exit codes, documented in the README. */
export const EXIT = { ok: 0, error: 1, changes: 2, internal: 70, busy: 75, cancelled: 130 } as const;
