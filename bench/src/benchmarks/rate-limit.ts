/**
 * rate-limit: 429s ÷ calls against a CRM that allows LIMIT requests per WINDOW_MS (fixed windows), answers 429 with
 * Retry-After beyond that and reports its quota on every answer. The same stream of new contacts (fetch + create
 * each) is synced with the mapping declaring the limit (rateLimit.requestsPerSecond), the quota headers
 * (rateLimit.remaining / resetMs), both, or nothing (the runner then learns the limit from 429s alone).
 */
import type { MappingDefinition } from '@crm-sync/core';
import type { Benchmark, Figure } from '../figure';
import { benchRunner } from '../lib/bench-runner';
import { eventBatches } from '../lib/events';
import { StubCrm } from '../lib/stub-crm';
import { scratchDir } from '../lib/tmp';

const LIMIT = 20;
const WINDOW_MS = 500;
const CONTACTS = 80;
const HEADERS = { remaining: "$number(headers.'x-ratelimit-remaining')", resetMs: "$number(headers.'x-ratelimit-reset')" };
const VARIANTS: Array<{ name: string; rateLimit?: MappingDefinition['rateLimit']; target: boolean }> = [
  { name: 'requestsPerSecond declared', rateLimit: { requestsPerSecond: (LIMIT * 1000) / WINDOW_MS }, target: true },
  { name: 'quota headers declared (remaining, resetMs)', rateLimit: HEADERS, target: true },
  { name: 'both declared', rateLimit: { requestsPerSecond: (LIMIT * 1000) / WINDOW_MS, ...HEADERS }, target: true },
  { name: 'nothing declared (429s only)', target: false },
];

async function syncAgainstLimit(rateLimit: MappingDefinition['rateLimit'] | undefined, run: number): Promise<{ calls: number; tooMany: number; seconds: number }> {
  const scratch = scratchDir('rate');
  const crm = await new StubCrm({ rateLimit: { requests: LIMIT, windowMs: WINDOW_MS } }).start();
  const bench = benchRunner({
    storeFile: scratch.file('runner.db'), crmUrl: crm.url, rateLimit, tenant: { concurrency: 8 },
    retry: { baseMs: 100, maxMs: 2000, budgetMs: 120_000 },
  });
  try {
    for (const b of eventBatches(0, CONTACTS, CONTACTS, 1, { prefix: `rate${run}` })) await bench.runner.ingest(b, { immediate: true });
    const started = performance.now();
    bench.runner.start();
    await bench.runner.whenIdle();
    const seconds = (performance.now() - started) / 1000;
    const { leads, deadLetters } = await bench.runner.status();
    if (leads !== CONTACTS || deadLetters > 0) throw new Error(`expected ${CONTACTS} leads and no dead letters, got ${leads} and ${deadLetters}`);
    return { calls: crm.calls(), tooMany: crm.counts.tooMany, seconds };
  } finally {
    await bench.close();
    await crm.close();
    scratch.remove();
  }
}

export const rateLimit: Benchmark = {
  name: 'rate-limit',
  description: `${CONTACTS} new contacts (fetch + create each, concurrency 8) against a stub CRM allowing ${LIMIT} requests per ${WINDOW_MS} ms, answering 429 with Retry-After beyond that and sending X-RateLimit-Remaining / X-RateLimit-Reset on every answer.`,
  async run(): Promise<Figure[]> {
    const figures: Figure[] = [];
    for (const [i, v] of VARIANTS.entries()) {
      const r = await syncAgainstLimit(v.rateLimit, i);
      const share = Math.round((r.tooMany / r.calls) * 1000) / 10;
      figures.push({
        name: `429s ÷ calls, ${v.name}`, value: share, unit: `% (${r.tooMany} of ${r.calls} calls, ${r.seconds.toFixed(1)} s)`,
        ...(v.target ? { target: '≤ 1 %', met: share <= 1 } : {}),
      });
    }
    return figures;
  },
};
