/**
 * end-to-end: whole syncs on the update path (contacts with a stored lead id whose payload changed) through the
 * Runner — claim, render, hash check, the engine over got, the store's complete — against a zero-latency stub CRM,
 * vs the fastest a client can talk to the same stub: bare node:http over keep-alive sockets, and bare got 11 with a
 * keep-alive agent, all at the same concurrency, interleaved round by round.
 */
import http from 'node:http';
import got from 'got';
import type { Benchmark, Figure } from '../figure';
import { interleave, median, medianRatio } from '../measure';
import { benchRunner } from '../lib/bench-runner';
import { eventBatches } from '../lib/events';
import { keepAliveAgent, rawRequest } from '../lib/raw-http';
import { StubCrm } from '../lib/stub-crm';
import { scratchDir } from '../lib/tmp';
import { countdown, runConcurrently } from '../lib/workers';

const CONTACTS = 1000;
const CONCURRENCY = 8;
const ROUNDS = 9;

export const endToEnd: Benchmark = {
  name: 'end-to-end',
  description: `Update-path syncs of ${CONTACTS} contacts (stored lead ids, changed payloads) by the Runner at concurrency ${CONCURRENCY}, vs a bare keep-alive client sending the same number of update requests to the same zero-latency stub CRM at the same concurrency.`,
  async run(): Promise<Figure[]> {
    const scratch = scratchDir('e2e');
    const crm = await new StubCrm().start();
    let onSync: (outcome: string) => void = () => undefined;
    const bench = benchRunner({
      storeFile: scratch.file('runner.db'), crmUrl: crm.url, tenant: { concurrency: CONCURRENCY },
      hooks: { onSync: (e) => onSync(e.outcome) },
    });
    const { runner } = bench;
    const agent = keepAliveAgent(CONCURRENCY);
    const gotAgent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const updateUrls = Array.from({ length: CONTACTS }, (_, i) => new URL(`${crm.url}/crm/update/L${i + 1}`));
    const body = JSON.stringify({ phone: '+919000000001', name: 'Contact 1', email: 'contact1@example.com', custom_fields: { utm_campaign: 'campaign_1', city: 'Mumbai', version: 1 } });
    const headers = { 'auth-key': 'bench-crm-key' };

    /** Ingests a new version of every contact (runner stopped, untimed), then times the runner syncing them all. */
    let version = 0;
    const syncAll = async (expected: string): Promise<number> => {
      version++;
      for (const b of eventBatches(0, CONTACTS, 500, version)) await runner.ingest(b, { immediate: true });
      const done = countdown(CONTACTS);
      let unexpected = '';
      onSync = (outcome) => { if (outcome !== expected) unexpected = outcome; done.tick(); };
      const started = performance.now();
      runner.start();
      await done.done;
      const ms = performance.now() - started;
      await runner.stop();
      if (unexpected) throw new Error(`expected every sync to be ${expected}, one was ${unexpected}`);
      return ms;
    };
    const clientRound = (send: (url: URL) => Promise<number>) => async () => {
      const started = performance.now();
      await runConcurrently(updateUrls, CONCURRENCY, async (url) => {
        const status = await send(url);
        if (status !== 200) throw new Error(`the stub answered ${status}`);
      });
      return performance.now() - started;
    };
    const rawOp = clientRound(async (url) => (await rawRequest(agent, url, 'POST', body, headers)).status);
    const gotOp = clientRound(async (url) => (await got.post(url, { body, headers: { ...headers, 'content-type': 'application/json' }, agent: { http: gotAgent }, retry: { limit: 0 }, throwHttpErrors: false })).statusCode);

    try {
      await syncAll('created'); // fetch (not found) + create: every contact gets a stored lead id
      crm.resetCounts();
      const { msPerOp: [runnerMs, rawMs, gotMs] } = await interleave([() => syncAll('updated'), rawOp, gotOp], { rounds: ROUNDS, batch: 1, warmup: 1 });
      const runnerUpdates = (ROUNDS + 1) * CONTACTS;
      if (crm.counts.update !== runnerUpdates * 3 || crm.calls() !== crm.counts.update) throw new Error(`expected only update calls, got ${JSON.stringify(crm.counts)}`);
      const perSecond = (ms: number[]) => Math.round((CONTACTS * 1000) / median(ms));
      const ratio = (ms: number[]) => Math.round(100 / medianRatio(runnerMs!, ms)) / 100;
      const vsRaw = ratio(rawMs!);
      const vsGot = ratio(gotMs!);
      return [
        { name: `bare node:http, keep-alive (${CONCURRENCY} in flight)`, value: perSecond(rawMs!), unit: 'requests/s' },
        { name: `bare got 11, keep-alive agent (${CONCURRENCY} in flight)`, value: perSecond(gotMs!), unit: 'requests/s' },
        { name: `Runner syncs, update path (concurrency ${CONCURRENCY})`, value: perSecond(runnerMs!), unit: 'syncs/s' },
        { name: 'Runner syncs ÷ bare node:http', value: vsRaw, unit: '×', target: '≥ 0.5', met: vsRaw >= 0.5 },
        { name: 'Runner syncs ÷ bare got', value: vsGot, unit: '×', target: '≥ 0.7', met: vsGot >= 0.7 },
        { name: 'bare got ÷ bare node:http', value: Math.round(100 / medianRatio(gotMs!, rawMs!)) / 100, unit: '×', note: 'the floor the engine\'s HTTP client sets' },
      ];
    } finally {
      onSync = () => undefined;
      agent.destroy();
      gotAgent.destroy();
      await bench.close();
      await crm.close();
      scratch.remove();
    }
  },
};
