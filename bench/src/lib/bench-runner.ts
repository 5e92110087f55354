/**
 * A Runner wired as the daemon wires it (SQLite file, real SyncEngine over got, the contract's default mapping),
 * pointed at a CRM on 127.0.0.1, for the benchmarks that drive whole syncs or ingest.
 */
import { compileMapping, GotHttpClient, SyncEngine, type MappingDefinition } from '@crm-sync/core';
import { registerBuiltinAdapters, Runner, SqliteStore, type RunnerHooks, type TenantSettings } from '@crm-sync/runner';

export const CRM_KEY = 'bench-crm-key';

/** The seed contract (mappings/seed-contract.yaml) without its examples; `rateLimit` as the benchmark declares it. */
export function contractMapping(rateLimit?: MappingDefinition['rateLimit']): MappingDefinition {
  return {
    name: 'bench-contract',
    baseUrl: 'https://crm.example.com',
    auth: { adapter: 'auth-key', header: 'Auth-Key', secret: 'env:BENCH_CRM_KEY' },
    flow: 'fetch-create-update',
    encoding: 'json',
    ...(rateLimit ? { rateLimit } : {}),
    payload: '{ "phone": contact.phone, "name": contact.name, "email": contact.email, "custom_fields": contact.attributes }',
    endpoints: {
      fetch: { method: 'GET', url: '/crm/fetch', query: { phone: '{{contact.phone}}', email: '{{contact.email}}' } },
      create: { method: 'POST', url: '/crm/create' },
      update: { method: 'POST', url: '/crm/update/{{leadId}}' },
    },
    responses: {
      leadId: 'body.lead_id',
      notFound: 'status = 404 and body.status = "Not Found"',
      failed: 'status >= 400 or $contains($string(body.status), "Failed")',
      reason: 'body.reason',
    },
  } as MappingDefinition;
}

export interface BenchRunnerOptions {
  storeFile: string;
  crmUrl: string;
  tenant?: Partial<Omit<TenantSettings, 'mapping'>>;
  rateLimit?: MappingDefinition['rateLimit'];
  hooks?: RunnerHooks;
  retry?: { baseMs: number; maxMs: number; budgetMs: number };
}

export interface BenchRunner {
  runner: Runner;
  store: SqliteStore;
  http: GotHttpClient;
  close(): Promise<void>;
}

export function benchRunner(opts: BenchRunnerOptions): BenchRunner {
  registerBuiltinAdapters();
  const mapping = compileMapping(JSON.stringify(contractMapping(opts.rateLimit)), { file: 'bench-contract.json' });
  const store = new SqliteStore(opts.storeFile);
  const http = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
  const engine = new SyncEngine({ http, secrets: () => CRM_KEY });
  const tenant: TenantSettings = { name: 'acme', mapping, baseUrl: opts.crmUrl, quietMs: 300_000, maxWaitMs: 3_600_000, concurrency: 8, ...opts.tenant };
  const runner = new Runner({ tenants: [tenant], store, engine, hooks: opts.hooks, retry: opts.retry, recheckMs: 1000 });
  return {
    runner, store, http,
    async close() {
      await runner.stop({ drainMs: 1000 });
      await store.close();
      http.close();
    },
  };
}
