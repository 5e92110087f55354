import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { checkExamples, compileMapping } from '@crm-sync/core';
import { registerBuiltinAdapters } from '@crm-sync/runner';

/** Every mapping we ship is its own golden test: its examples (a contact in, the exact requests out) must pass offline. */
const MAPPINGS_DIR = join(__dirname, '..', 'mappings');

function mappingFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return mappingFiles(path);
    return /\.(ya?ml|json)$/i.test(entry.name) ? [path] : [];
  });
}

const files = mappingFiles(MAPPINGS_DIR);

beforeAll(() => {
  registerBuiltinAdapters();
});

it('finds the mappings we ship', () => {
  expect(files.length).toBeGreaterThanOrEqual(6);
});

describe.each(files.map((f) => [relative(MAPPINGS_DIR, f), f]))('mappings/%s', (_name, file) => {
  it('has at least one golden example', () => {
    const mapping = compileMapping(readFileSync(file, 'utf8'), { file });
    expect(mapping.definition.examples?.length ?? 0).toBeGreaterThan(0);
  });

  it('passes every golden example', async () => {
    const mapping = compileMapping(readFileSync(file, 'utf8'), { file });
    const failures = await checkExamples(mapping);
    // The failures themselves are the message: which example, which request, what differed.
    expect(failures).toEqual([]);
  });
});
