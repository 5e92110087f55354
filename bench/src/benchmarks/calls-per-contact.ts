/**
 * calls-per-contact: the debounce at work. A bursty stream (several changes per burst, bursts far apart) goes
 * through Runner.ingest in real time against the reference CRM; every burst is one quiet period, which should cost
 * exactly one CRM call (an update), except a new contact's first, which costs two (fetch, then create).
 */
import { startReferenceCrm } from '@crm-sync/testkit';
import type { Benchmark, Figure } from '../figure';
import { benchRunner, CRM_KEY } from '../lib/bench-runner';
import { burstyStream, replay } from '../lib/bursty-stream';
import { scratchDir } from '../lib/tmp';

const STREAM = { contacts: 200, bursts: 3, eventsPerBurst: 4, spacingMs: 40, gapMs: 900, staggerMs: 300 };
const QUIET_MS = 300;

export const callsPerContact: Benchmark = {
  name: 'calls-per-contact',
  description: `${STREAM.contacts} new contacts, each changing in ${STREAM.bursts} bursts of ${STREAM.eventsPerBurst} events ${STREAM.spacingMs} ms apart (bursts ${STREAM.gapMs} ms apart), quiet window ${QUIET_MS} ms, against the reference CRM: CRM calls made ÷ calls expected (2 for a new contact's first quiet period: fetch + create; 1 for each later one: update).`,
  async run(): Promise<Figure[]> {
    const scratch = scratchDir('calls');
    const crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } });
    const bench = benchRunner({ storeFile: scratch.file('runner.db'), crmUrl: crm.url, tenant: { quietMs: QUIET_MS, maxWaitMs: 60_000, concurrency: 8 } });
    try {
      const stream = burstyStream(STREAM);
      bench.runner.start();
      await replay(stream, async (events) => {
        const r = await bench.runner.ingest(events);
        if (r.rejected.length > 0) throw new Error(`events refused: ${JSON.stringify(r.rejected[0])}`);
      });
      await bench.runner.whenIdle();
      const byRoute = { fetch: 0, create: 0, update: 0 };
      for (const r of crm.requests()) if (r.route in byRoute) byRoute[r.route as keyof typeof byRoute]++;
      const calls = crm.requests().length;
      const expected = STREAM.contacts * (2 + (STREAM.bursts - 1));
      const leads = crm.leads().length;
      const ratio = Math.round((calls / expected) * 1000) / 1000;
      return [
        { name: 'events sent', value: stream.length, unit: 'events' },
        { name: 'CRM calls (fetch / create / update)', value: calls, unit: `calls (${byRoute.fetch} / ${byRoute.create} / ${byRoute.update})` },
        { name: 'calls expected (2 for each first quiet period, 1 for each later one)', value: expected, unit: 'calls' },
        { name: 'leads in the CRM', value: leads, unit: 'leads', target: `= ${STREAM.contacts}`, met: leads === STREAM.contacts },
        { name: 'CRM calls ÷ expected', value: ratio, unit: '×', target: '= 1', met: calls === expected },
      ];
    } finally {
      await bench.close();
      await crm.close();
      scratch.remove();
    }
  },
};
