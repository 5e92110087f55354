/**
 * pending-rss: memory with a million contacts waiting for their quiet window. A child process (so its RSS holds
 * nothing of the other benchmarks) opens a SQLite store and a Runner, accepts 1,000,000 new contacts through the
 * store in group-commit batches, starts the Runner (nothing is due yet) and reports its RSS: the debouncer keeps
 * pending state in the store's dueAt column, not in JS memory, so RSS should not grow with the pending count.
 */
import { fork } from 'node:child_process';
import type { Benchmark, Figure } from '../figure';

const CONTACTS = 1_000_000;

export interface RssReport {
  contacts: number;
  pending: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapUsedMiB: number;
  ingestSeconds: number;
}

export const pendingRss: Benchmark = {
  name: 'pending-rss',
  description: `RSS of a process holding a Runner and its SQLite store with ${CONTACTS.toLocaleString('en-US')} contacts pending (accepted through the store in batches of 5,000, measured in a child process).`,
  async run(): Promise<Figure[]> {
    const report = await new Promise<RssReport>((resolve, reject) => {
      const child = fork(require.resolve('../lib/pending-rss-child'), [String(CONTACTS)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.once('message', (m) => resolve(m as RssReport));
      child.once('error', reject);
      child.once('exit', (code) => { if (code !== 0) reject(new Error(`the pending-rss child exited with ${code}`)); });
    });
    if (report.pending !== CONTACTS) throw new Error(`expected ${CONTACTS} pending, the store counts ${report.pending}`);
    return [
      { name: 'RSS before ingest (Runner + empty store)', value: report.rssBeforeMiB, unit: 'MiB' },
      { name: `RSS with ${CONTACTS.toLocaleString('en-US')} contacts pending (Runner started)`, value: report.rssAfterMiB, unit: 'MiB', target: '≤ 300 MiB', met: report.rssAfterMiB <= 300 },
      { name: 'JS heap used after GC', value: report.heapUsedMiB, unit: 'MiB' },
      { name: 'accept rate while filling', value: Math.round(CONTACTS / report.ingestSeconds), unit: 'contacts/s' },
    ];
  },
};

