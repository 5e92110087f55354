import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A scratch directory for a benchmark's SQLite files, removed by `remove()`. */
export function scratchDir(name: string): { dir: string; file: (f: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `crm-sync-bench-${name}-`));
  return { dir, file: (f) => join(dir, f), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
