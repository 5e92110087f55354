/**
 * One mapping template for the engine's integration tests: a mapping definition generated for any flow × auth ×
 * encoding, and a reference CRM started with the matching options. Every combination is the same code path.
 */
import { registerBuiltinAdapters } from '@crm-sync/runner';
import { compileMapping, GotHttpClient, SyncEngine, toContact, type CompiledMapping, type Contact, type MappingDefinition } from '@crm-sync/core';
import { startReferenceCrm, type ReferenceCrm, type ReferenceCrmOptions } from '@crm-sync/testkit';

export const FLOWS = ['fetch-create-update', 'upsert', 'no-fetch'] as const;
export const AUTHS = ['auth-key', 'basic', 'bearer', 'body-secret', 'hmac'] as const;
export const ENCODINGS = ['json', 'form'] as const;

export type Flow = (typeof FLOWS)[number];
export type Auth = (typeof AUTHS)[number];
export type Encoding = (typeof ENCODINGS)[number];

export interface Combination {
  flow: Flow;
  auth: Auth;
  encoding: Encoding;
}

/** Distinctive, and full of characters that each encoding spells differently: a leak of any spelling is visible. */
export const SECRET = 'Sk-Zq7+Vx/9=&Rw';
const SECRET_ENV = 'CRM_SYNC_ENGINE_TEST_KEY';

export const DEFAULT: Combination = { flow: 'fetch-create-update', auth: 'auth-key', encoding: 'json' };

const AUTH_BLOCKS: Record<Auth, MappingDefinition['auth']> = {
  'auth-key': { adapter: 'auth-key', header: 'Auth-Key' },
  basic: { adapter: 'basic', username: 'crm-sync' },
  bearer: { adapter: 'bearer' },
  'body-secret': { adapter: 'body-secret', field: 'secret' },
  // The reference CRM's signing scheme (its auth style hmac): the key itself is never sent.
  hmac: { adapter: 'hmac', prefix: 'sha256=', timestampHeader: 'X-Timestamp', signed: ['timestamp', 'method', 'path', 'body'] },
};

const ENDPOINTS: Record<Flow, MappingDefinition['endpoints']> = {
  'fetch-create-update': {
    fetch: { method: 'GET', url: '/crm/fetch', query: { phone: '{{contact.phone}}', email: '{{contact.email}}' } },
    create: { method: 'POST', url: '/crm/create' },
    update: { method: 'POST', url: '/crm/update/{{leadId}}' },
  },
  upsert: { upsert: { method: 'POST', url: '/crm/upsert' } },
  'no-fetch': {
    create: { method: 'POST', url: '/crm/create' },
    update: { method: 'PUT', url: '/crm/update/{{leadId}}' },
  },
};

/** The contract's payload; the upsert endpoint also needs the known id in the body to decide create-or-update. */
function payload(flow: Flow): string {
  const leadId = flow === 'upsert' ? ', "lead_id": leadId' : '';
  return `{ "phone": contact.phone, "name": contact.name, "email": contact.email, "custom_fields": contact.attributes${leadId} }`;
}

export function mappingDefinition(c: Combination, overrides: Partial<MappingDefinition> = {}): MappingDefinition {
  return {
    name: `test-${c.flow}-${c.auth}-${c.encoding}`,
    baseUrl: 'http://127.0.0.1',
    auth: { ...AUTH_BLOCKS[c.auth], secret: `env:${SECRET_ENV}` },
    flow: c.flow,
    encoding: c.encoding,
    timeoutMs: 5000,
    payload: payload(c.flow),
    endpoints: ENDPOINTS[c.flow],
    responses: {
      leadId: 'body.lead_id',
      // A 404 is "not found" only with the contract's body: a wrong URL's 404 is a failure, never a reason to create.
      notFound: 'status = 404 and body.status = "Not Found"',
      failed: 'status >= 400 or $contains($string(body.status), "Failed")',
      reason: 'body.reason',
    },
    ...overrides,
  };
}

export function compile(c: Combination, overrides: Partial<MappingDefinition> = {}): CompiledMapping {
  registerBuiltinAdapters();
  const definition = mappingDefinition(c, overrides);
  return compileMapping(JSON.stringify(definition, null, 2), { file: `${definition.name}.json` });
}

/** The reference CRM configured as the combination's CRM: its auth style and key, and the routes its flow uses. */
export function crmOptions(c: Combination, extra: ReferenceCrmOptions = {}): ReferenceCrmOptions {
  return {
    auth: { style: c.auth, key: SECRET },
    fetch: c.flow === 'fetch-create-update',
    upsert: c.flow === 'upsert',
    // Without a fetch endpoint the CRM must de-duplicate creates itself (CONTRACT.md).
    dedupeOnCreate: c.flow === 'no-fetch',
    ...extra,
  };
}

export interface Harness {
  crm: ReferenceCrm;
  engine: SyncEngine;
  http: GotHttpClient;
  close(): Promise<void>;
}

/** A reference CRM and an engine that reaches it over real HTTP (loopback allowed), with the secret in the environment. */
export async function startHarness(c: Combination, extra: ReferenceCrmOptions = {}, secret = SECRET): Promise<Harness> {
  process.env[SECRET_ENV] = secret;
  const crm = await startReferenceCrm(crmOptions(c, extra));
  const http = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
  return {
    crm,
    http,
    engine: new SyncEngine({ http }),
    async close() {
      http.close();
      await crm.close();
    },
  };
}

export function contact(overrides: Record<string, unknown> = {}): Contact {
  return toContact({
    contactId: 'c_0042', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com',
    attributes: { utm_campaign: 'diwali_2024', city: 'Mumbai' }, ...overrides,
  }, { defaultTenant: 'acme' });
}
