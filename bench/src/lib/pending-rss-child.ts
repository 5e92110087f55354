/**
 * The child process of the pending-rss benchmark: fills a fresh store with pending contacts and sends back an
 * RssReport. Contacts are built directly (already E.164) so the run measures the store and the Runner, not validation.
 */
import type { Contact } from '@crm-sync/core';
import type { AcceptItem } from '@crm-sync/runner';
import type { RssReport } from '../benchmarks/pending-rss';
import { benchRunner } from './bench-runner';
import { scratchDir } from './tmp';

const BATCH = 5000;
const WINDOW = { quietMs: 3_600_000, maxWaitMs: 86_400_000 };
const mib = (bytes: number) => Math.round(bytes / (1024 * 1024));

function contact(i: number): Contact {
  return {
    tenant: 'acme', contactId: `c_${i}`, phone: `+91${9_000_000_000 + i}`, email: `contact${i}@example.com`, name: `Contact ${i}`,
    tags: ['whatsapp'], attributes: { utm_campaign: 'campaign_1', city: 'Mumbai' },
  };
}

async function main(): Promise<void> {
  const total = Number(process.argv[2]);
  const scratch = scratchDir('rss');
  const bench = benchRunner({ storeFile: scratch.file('runner.db'), crmUrl: 'http://127.0.0.1:9', tenant: WINDOW });
  try {
    bench.runner.start();
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    for (let at = 0; at < total; at += BATCH) {
      const items: AcceptItem[] = [];
      for (let i = at; i < Math.min(total, at + BATCH); i++) items.push({ contact: contact(i), window: WINDOW });
      await bench.store.accept(items, Date.now());
    }
    const ingestSeconds = (performance.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 1500)); // the dispatcher rechecks the store (every 1 s) in this time
    global.gc?.();
    const { pending } = await bench.runner.status();
    const mem = process.memoryUsage();
    const report: RssReport = { contacts: total, pending, rssBeforeMiB: mib(rssBefore), rssAfterMiB: mib(mem.rss), heapUsedMiB: mib(mem.heapUsed), ingestSeconds };
    process.send!(report);
  } finally {
    await bench.close();
    scratch.remove();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
