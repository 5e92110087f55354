import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The seed contract mapping (mappings/seed-contract.yaml): the good file the unit tests change one line of. */
export function readSeedMapping(): string {
  return readFileSync(join(__dirname, '../../../../mappings/seed-contract.yaml'), 'utf8');
}
