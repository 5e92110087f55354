/**
 * soaks: the crash soak (kill -9 of the daemon mid-stream, restarts) and the CRM fault soak (5xx, 429, timeouts,
 * resets, lost create answers, search lag), run in their short mode through jest exactly as `pnpm test` runs them.
 * Each suite writes its figures to SOAK_FIGURES; the report takes them from there. `pnpm soak` runs the long mode.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Benchmark, Figure } from '../figure';
import { scratchDir } from '../lib/tmp';

const REPO = join(__dirname, '../../..');
const SUITES = { 'crash-soak': 'test/reliability/crash-soak.test.ts', 'crm-fault-soak': 'test/reliability/crm-fault-soak.test.ts' };
/** What each suite reports as text (mixed counts), shown beside the counted figures. */
const DESCRIBED = ['events', 'faults', 'posts', 'CRM calls', 'calls per contact', 'answers by status', 'failed calls', 'time'];
const MUST_BE_ZERO = ['duplicates', 'lost (missing)', 'mismatches', 'dead letters'];

function figuresOf(suite: string, data: Record<string, unknown>): Figure[] {
  const out: Figure[] = [];
  for (const key of DESCRIBED) if (data[key] !== undefined) out.push({ name: `${suite}: ${key}`, value: NaN, unit: '', note: String(data[key]) });
  for (const key of ['contacts', 'kills', 'sync attempts', 'leads']) {
    if (typeof data[key] === 'number') out.push({ name: `${suite}: ${key}`, value: data[key] as number, unit: '' });
  }
  for (const key of MUST_BE_ZERO) {
    const v = data[key];
    if (typeof v === 'number') out.push({ name: `${suite}: ${key}`, value: v, unit: '', target: '= 0', met: v === 0 });
  }
  return out;
}

export const soaks: Benchmark = {
  name: 'soaks',
  description: 'The crash soak (≥ 10,000 events over 1,000 contacts, 20 × kill -9 and restart) and the CRM fault soak (20 % 5xx, 429 with Retry-After, answers slower than the timeout, resets, lost create answers, search lag), short mode, as `pnpm test` runs them; `pnpm soak` runs the long mode (docs/reliability.md).',
  async run(): Promise<Figure[]> {
    const scratch = scratchDir('soaks');
    try {
      const jest = spawnSync(process.execPath, [require.resolve('jest/bin/jest', { paths: [REPO] }), '--runInBand', ...Object.values(SUITES)], {
        cwd: REPO, env: { ...process.env, SOAK_FIGURES: scratch.dir }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
      });
      const figures: Figure[] = [];
      for (const suite of Object.keys(SUITES)) {
        let data: Record<string, unknown>;
        try {
          data = JSON.parse(readFileSync(scratch.file(`${suite}.json`), 'utf8'));
        } catch {
          throw new Error(`${suite} wrote no figures (jest exit ${jest.status}):\n${(jest.stderr ?? '').slice(-4000)}`);
        }
        figures.push(...figuresOf(suite, data));
      }
      figures.push({ name: 'soak suites passed', value: jest.status === 0 ? 1 : 0, unit: jest.status === 0 ? '(all assertions held)' : '(see `pnpm soak` output)', target: '= 1', met: jest.status === 0 });
      return figures;
    } finally {
      scratch.remove();
    }
  },
};
