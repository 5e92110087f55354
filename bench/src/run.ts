/**
 * `pnpm bench`: runs every benchmark listed below, prints a markdown report and writes it into docs/benchmarks.md
 * between the bench markers. Add a benchmark by writing bench/src/benchmarks/<name>.ts and listing it here.
 */
import { join } from 'node:path';
import type { Benchmark } from './figure';
import { mappingPipeline } from './benchmarks/mapping-pipeline';
import { ingest } from './benchmarks/ingest';
import { endToEnd } from './benchmarks/end-to-end';
import { pendingRss } from './benchmarks/pending-rss';
import { callsPerContact } from './benchmarks/calls-per-contact';
import { rateLimit } from './benchmarks/rate-limit';
import { scaleOut } from './benchmarks/scale-out';
import { soaks } from './benchmarks/soaks';
import { toMarkdown, writeBetweenMarkers, type BenchResult } from './report';

const BENCHMARKS: Benchmark[] = [mappingPipeline, ingest, endToEnd, pendingRss, callsPerContact, rateLimit, scaleOut, soaks];
const COMMAND = 'pnpm bench';

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const results: BenchResult[] = [];
  for (const b of BENCHMARKS.filter((x) => only.length === 0 || only.includes(x.name))) {
    process.stderr.write(`running ${b.name}…\n`);
    results.push({ name: b.name, description: b.description, figures: await b.run() });
  }
  const markdown = toMarkdown(results, COMMAND + (only.length ? ` ${only.join(' ')}` : ''));
  process.stdout.write(`${markdown}\n`);
  if (only.length === 0) writeBetweenMarkers(join(__dirname, '../../docs/benchmarks.md'), markdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
