import { SyncError } from '@crm-sync/core';
import { registerBuiltinAdapters } from '@crm-sync/runner';
import { EXIT, parseCommandArgs, UsageError, type CommandIO } from './command';
import { commands } from './commands';

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: crm-sync <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `crm-sync <command> --help` for a command\'s options.',
  ].join('\n');
}

/** Runs the CLI; resolves to the exit code. Separate from bin.ts so tests can call it in-process. */
export async function main(argv: string[], io: CommandIO = { out: (t) => process.stdout.write(t + '\n'), err: (t) => process.stderr.write(t + '\n') }): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`crm-sync: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(command.help);
    return EXIT.ok;
  }
  try {
    registerBuiltinAdapters();
    return await command.run(parseCommandArgs(command, rest), io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`crm-sync ${name}: ${err.message}\n\n${command.help}`);
      return EXIT.usage;
    }
    io.err(`crm-sync ${name}: ${err instanceof SyncError ? err.describe() : (err as Error)?.message ?? String(err)}`);
    return EXIT.failure;
  }
}
