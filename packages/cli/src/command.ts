import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes: 0 success, 1 the work failed, 2 the command was used wrongly. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

export interface CommandIO {
  out(text: string): void;
  err(text: string): void;
  /** The whole of standard input (for `--contact -`). */
  readStdin?(): Promise<string>;
  /** Aborting it stops a long-running command as SIGINT/SIGTERM would (lets tests run those commands in-process). */
  signal?: AbortSignal;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full help: usage line, arguments, options with defaults. */
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Resolves to the exit code. Throw UsageError for misuse; any other error is a failure (exit 1). */
  run(args: ReturnType<typeof parseCommandArgs>, io: CommandIO): Promise<number>;
}

export function parseCommandArgs(command: Command, argv: string[]) {
  try {
    return parseArgs({ args: argv, options: command.options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
