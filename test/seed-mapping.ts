import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** mappings/seed-contract.yaml: the mapping most end-to-end tests run. */
export const SEED_MAPPING = join(__dirname, '..', 'mappings', 'seed-contract.yaml');

/**
 * The seed mapping's text, with another request timeout when `timeoutMs` is given. Tests that end a sync without an
 * outcome (kill, stop, a lost answer) shorten it: the runner retries a dead runner's create after the timeout, and
 * syncs once more after a write whose outcome is unknown at the end of the settle window (twice it, at least 3 s).
 */
export function seedMappingText(timeoutMs?: number): string {
  const seed = readFileSync(SEED_MAPPING, 'utf8');
  if (timeoutMs === undefined) return seed;
  const changed = seed.replace('timeoutMs: 10000', `timeoutMs: ${timeoutMs}`);
  if (changed === seed) throw new Error(`${SEED_MAPPING} no longer says timeoutMs: 10000`);
  return changed;
}
