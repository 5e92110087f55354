import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { main } from '../main';

export const REPO = resolve(__dirname, '../../../..');
export const SEED_MAPPING = join(REPO, 'mappings/seed-contract.yaml');
export const seedMappingText = () => readFileSync(SEED_MAPPING, 'utf8');

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/** Runs `crm-sync argv…` in-process, capturing what it prints. `onOut` sees each line as it is printed. */
export async function runCli(argv: string[], opts: { stdin?: string; signal?: AbortSignal; onOut?: (text: string) => void } = {}): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, {
    out: (t) => { out.push(t); opts.onOut?.(t); },
    err: (t) => err.push(t),
    readStdin: async () => opts.stdin ?? '',
    signal: opts.signal,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A temporary directory for the test file's inputs, removed after all its tests. */
export function tempDir(): { write(name: string, text: string): string } {
  const dir = mkdtempSync(join(tmpdir(), 'crm-sync-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    write(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
  };
}

/** The seed mapping with one piece of text replaced; fails loudly if the text is not there (the seed changed). */
export function seedWith(from: string, to: string): string {
  const text = seedMappingText();
  if (!text.includes(from)) throw new Error(`mappings/seed-contract.yaml no longer contains ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

export const PRIYA = { contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com', attributes: { utm_campaign: 'diwali' } };
