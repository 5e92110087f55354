import { readFile } from 'node:fs/promises';
import { ConfigError } from '@crm-sync/core';
import type { CommandIO } from './command';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads a JSON file, or standard input when `source` is `-`. The data is not validated here: a contact event is
 * validated by the engine's own rules, a canned-responses file by its reader.
 */
export async function readJsonInput(source: string, what: string, io: CommandIO): Promise<unknown> {
  const name = source === '-' ? 'standard input' : source;
  let text: string;
  try {
    text = source === '-' ? await (io.readStdin ?? readStdin)() : await readFile(source, 'utf8');
  } catch (err) {
    throw new ConfigError(`${what} ${name}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'ERR_INPUT_READ');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${what} ${name}: not valid JSON (${(err as Error).message})`, 'ERR_INPUT_JSON');
  }
}
