import assert from 'node:assert/strict';
import { compileDefinition, MappingError, registerAdapter, type AuthAdapter, type FlowAdapter, type OutgoingRequest } from '@crm-sync/core';
import { resolveTestApi, type TestApi } from './test-api';

/** The bodies a request can carry before encoding: none (a GET fetch), an object, an array, or raw text. */
export type BodyKind = 'none' | 'object' | 'array' | 'string';
const ALL_BODIES: readonly BodyKind[] = ['none', 'object', 'array', 'string'];

export interface AuthSuiteCase {
  /** The adapter's options, as a mapping's `auth` block gives them (less `adapter` and `secret`). Default {}. */
  options?: Record<string, unknown>;
  /**
   * Where the secret must land: `header:<name>`, `query:<name>`, `body:<dotted.path>` (object bodies), or `body`.
   * Default: anywhere, as long as it is exactly one place.
   */
  at?: string | Partial<Record<BodyKind, string>>;
  /** The bodies the adapter supports with these options. Default all four kinds. */
  bodies?: readonly BodyKind[];
}

export interface AuthSuiteOptions {
  /** The secret to test with; give one with characters that need encoding (`+`, `&`, `=`, `/`). */
  secret: string;
  /** Option sets to check; default one case with no options. */
  cases?: readonly AuthSuiteCase[];
  /** The test framework's describe/it; default the globals. */
  test?: TestApi;
}

const SAMPLE_BODIES: Record<BodyKind, () => unknown> = {
  none: () => undefined,
  object: () => ({ phone: '+919876543210', name: 'Ana & Bo', custom_fields: { crm_campaign_code: 'a+b=c' } }),
  array: () => [{ phone: '+919876543210' }],
  string: () => 'phone=%2B919876543210',
};

function sampleRequest(kind: BodyKind): OutgoingRequest {
  return {
    method: kind === 'none' ? 'GET' : 'POST',
    url: new URL('https://crm.example.com/crm/update/L-1?phone=%2B919876543210'),
    headers: { accept: 'application/json', 'x-request-id': 'req-1' },
    body: SAMPLE_BODIES[kind](),
  };
}

/** A request as `place → value`, so two requests can be compared place by place. */
function places(req: OutgoingRequest): Map<string, string> {
  const out = new Map<string, string>([['method', req.method], ['url:origin+path', `${req.url.origin}${req.url.pathname}`]]);
  for (const name of new Set(req.url.searchParams.keys())) out.set(`query:${name}`, req.url.searchParams.getAll(name).join('\u0000'));
  for (const [name, value] of Object.entries(req.headers)) {
    const key = `header:${name.toLowerCase()}`;
    // Two spellings of one header would be sent twice: keep both visible.
    out.set(key, out.has(key) ? `${out.get(key)}\u0000${value}` : value);
  }
  const walk = (path: string, v: unknown): void => {
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, child] of Object.entries(v)) walk(path ? `${path}.${k}` : k, child);
    else out.set(path ? `body:${path}` : 'body', JSON.stringify(v));
  };
  if (req.body !== undefined) {
    if (req.body && typeof req.body === 'object' && !Array.isArray(req.body)) walk('', req.body);
    else out.set('body', JSON.stringify(req.body));
  }
  return out;
}

function changedPlaces(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
}

function normalizePlace(at: string): string {
  return at.startsWith('header:') ? at.toLowerCase() : at;
}

function applied(adapter: AuthAdapter, kind: BodyKind, secret: string, options: Record<string, unknown>): OutgoingRequest {
  const request = sampleRequest(kind);
  adapter.apply(request, secret, options);
  return request;
}

/** A flow that needs only create, so a mapping for the options check can be as small as possible. */
const CREATE_ONLY_FLOW: FlowAdapter = { kind: 'flow', name: 'testkit-auth-suite-create-only', requires: ['create'], run: (ops) => ops.create() };

function compileWithAuth(adapter: AuthAdapter, options: Record<string, unknown>) {
  registerAdapter(adapter);
  registerAdapter(CREATE_ONLY_FLOW);
  return compileDefinition({
    name: 'auth-suite', baseUrl: 'https://crm.example.com', flow: CREATE_ONLY_FLOW.name, payload: '{}',
    auth: { ...options, adapter: adapter.name, secret: 'env:CRM_SYNC_AUTH_SUITE' },
    endpoints: { create: { method: 'POST', url: '/crm/create' } },
  }, { hash: 'auth-suite' });
}

/**
 * The behaviour every auth adapter owes the engine: the secret goes to one place (the one it documents) and nowhere
 * else, the rest of the request is left as it was, its options are checked, and the bodies it supports do not throw.
 * Registers the adapter in the default container (the options check compiles a mapping that names it).
 */
export function runAuthAdapterSuite(adapter: AuthAdapter, options: AuthSuiteOptions): void {
  const { describe, it } = resolveTestApi(options.test);
  const { secret } = options;
  const rotated = `${secret}-rotated`;
  const cases = options.cases?.length ? options.cases : [{}];

  describe(`auth adapter ${JSON.stringify(adapter.name)}: shared behaviour suite`, () => {
    it('declares itself: kind auth and a name', async () => {
      assert.equal(adapter.kind, 'auth');
      assert.match(adapter.name, /^[a-z0-9][a-z0-9._-]*$/, 'name must be lower-case letters, digits, . _ -');
    });

    if (adapter.optionsSchema?.additionalProperties === false) {
      it('refuses an option it does not know, naming it', async () => {
        assert.throws(() => compileWithAuth(adapter, { surelyNotAnOption: true }),
          (err: unknown) => err instanceof MappingError && err.errors.some((e) => e.field === 'auth.surelyNotAnOption'));
      });
    }

    for (const c of cases) {
      const opts = c.options ?? {};
      const label = `options ${JSON.stringify(opts)}`;
      it(`accepts ${label} when a mapping is compiled`, async () => {
        assert.doesNotThrow(() => compileWithAuth(adapter, opts));
      });

      for (const kind of c.bodies ?? ALL_BODIES) {
        const at = typeof c.at === 'string' ? c.at : c.at?.[kind];
        it(`${label}, ${kind} body: the secret goes to ${at ?? 'one place'} and nowhere else; the rest of the request is kept`, async () => {
          const before = places(sampleRequest(kind));
          const withSecret = places(applied(adapter, kind, secret, opts));
          const withRotated = places(applied(adapter, kind, rotated, opts));
          // Where the two secrets give different requests is where the secret (or what is derived from it) went.
          const secretPlaces = changedPlaces(withSecret, withRotated);
          assert.ok(secretPlaces.length > 0, 'the secret went nowhere: the request is the same whatever the secret');
          if (at) assert.deepEqual(secretPlaces, [normalizePlace(at)], `the secret must be in ${at} only`);
          else assert.equal(secretPlaces.length, 1, `the secret must be in one place, found it in ${secretPlaces.join(', ')}`);
          for (const [place, value] of before) {
            if (!secretPlaces.includes(place)) assert.equal(withSecret.get(place), value, `${place} was changed`);
          }
        });
      }
    }
  });
}
