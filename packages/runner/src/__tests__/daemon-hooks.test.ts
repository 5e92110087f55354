import { daemonHooks } from '../daemon/hooks';
import { createLogger } from '../log';
import { Metrics } from '../metrics';

describe('the daemon\'s log lines for syncs', () => {
  const lines: Array<Record<string, unknown>> = [];
  const metrics = new Metrics(() => ({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 0, leads: 0 }));
  const hooks = daemonHooks(metrics,
    createLogger({ level: 'info', destination: { write: (l: string) => { lines.push(JSON.parse(l)); } } }));
  beforeEach(() => { lines.length = 0; });
  const sync = { tenant: 'acme', contactId: 'c1', outcome: 'updated' as const, calls: [], durationMs: 12, leadId: 'L1' };

  it('a sync that succeeded is an info line; one with the engine\'s warnings is a warning carrying them', () => {
    hooks.onSync!(sync);
    hooks.onSync!({ ...sync, warnings: ['fetch matched 2 leads; using the first ("L1")'] });
    hooks.onSync!({ ...sync, outcome: 'skipped', leadId: undefined, reason: 'unknown to the CRM' });
    expect(lines.map((l) => [l.level, l.msg, l.warnings ?? l.reason])).toEqual([
      ['info', 'synced', undefined],
      ['warn', 'synced, with warnings', ['fetch matched 2 leads; using the first ("L1")']],
      ['info', 'skipped: the flow wrote nothing', 'unknown to the CRM'],
    ]);
  });

  it('a pause for the CRM\'s rate limit is logged and counted, with its length', async () => {
    hooks.onRateLimited!({ tenant: 'acme', pauseMs: 2000 });
    hooks.onRateLimited!({ tenant: 'acme', pauseMs: 500 });
    expect(lines.map((l) => [l.level, l.msg, l.pauseMs])).toEqual([['warn', 'CRM rate limit: tenant paused', 2000], ['warn', 'CRM rate limit: tenant paused', 500]]);
    const text = (await metrics.render()).body;
    expect(text).toMatch(/^crm_sync_tenant_pauses_total\{tenant="acme"\} 2$/m);
    expect(text).toMatch(/^crm_sync_tenant_paused_seconds_total\{tenant="acme"\} 2\.5$/m);
  });
});
