import {
  adapterNames, CannedHttpClient, compileMapping, ConfigError, MappingError, PermanentError, registerAdapter, resolveAdapter, RetryableError, SyncEngine,
  SyncError, toContact, type AuthAdapter,
} from '../index';
import { container as rootContainer } from 'tsyringe'; // after ../index, which loads reflect-metadata for it
import { registerBuiltinAdapters } from '@crm-sync/runner';
import { readSeedMapping } from './seed';

beforeAll(() => registerBuiltinAdapters());

const SECRET = 'Sup3r/Secret+key';
const contact = toContact({ contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma' }, { defaultTenant: 'acme' });

/** The seed contract signed by the given auth adapter, registered in a container of its own. */
function mappingWith(adapter: AuthAdapter, extraResponses = '') {
  const container = rootContainer.createChildContainer();
  registerAdapter(adapter, container);
  const text = readSeedMapping().replace(/^auth: .*$/m, `auth: { adapter: ${adapter.name}, secret: "env:SEED_CRM_AUTH_KEY" }`)
    .replace(/^responses:\n/m, `responses:\n${extraResponses}`);
  return compileMapping(text, { file: 'acme.yaml', container });
}

async function failure(adapter: AuthAdapter) {
  const http = new CannedHttpClient();
  const err = await new SyncEngine({ http, secrets: () => SECRET }).sync(mappingWith(adapter), contact).then(() => undefined, (e: unknown) => e);
  expect(http.requests).toEqual([]); // nothing was sent
  return err as SyncError;
}

describe('an auth adapter that throws', () => {
  it('from apply: a permanent ERR_AUTH_ADAPTER naming the step, with the secret its message quotes masked', async () => {
    const err = await failure({ kind: 'auth', name: 'throws-in-apply', apply: (_req, secret) => { throw new Error(`cannot put key ${secret} in the body`); } });
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'ERR_AUTH_ADAPTER', context: { tenant: 'acme', contactId: 'c1', step: 'fetch' } });
    expect(err.message).toBe('the throws-in-apply auth adapter failed to apply its credential to fetch: cannot put key *** in the body');
  });

  it('from sign: the same', async () => {
    const err = await failure({
      kind: 'auth', name: 'throws-in-sign', apply: () => undefined,
      sign: (_req, secret) => { throw new TypeError(`no digest for ${secret}`); },
    });
    expect(err).toMatchObject({ code: 'ERR_AUTH_ADAPTER', retryable: false, context: { step: 'fetch', contactId: 'c1' } });
    expect(err.message).toBe('the throws-in-sign auth adapter failed to sign fetch: no digest for ***');
  });

  it('a classified error keeps its code and class, and gets the sync\'s context', async () => {
    const permanent = await failure({ kind: 'auth', name: 'refuses', apply: (_req, secret) => { throw new PermanentError('ERR_AUTH_PARAM_TAKEN', `api_key=${secret} is taken`); } });
    expect(permanent).toBeInstanceOf(PermanentError);
    expect(permanent).toMatchObject({ code: 'ERR_AUTH_PARAM_TAKEN', message: 'api_key=*** is taken', context: { tenant: 'acme', contactId: 'c1', step: 'fetch' } });
    const retryable = await failure({ kind: 'auth', name: 'busy', apply: () => { throw new RetryableError('ERR_KMS_BUSY', 'the key store is busy', { retryAfterMs: 500 }); } });
    expect(retryable).toBeInstanceOf(RetryableError);
    expect(retryable).toMatchObject({ code: 'ERR_KMS_BUSY', retryAfterMs: 500, context: { contactId: 'c1' } });
  });
});

describe('errors from another copy of @crm-sync/core (a plugin built against its own)', () => {
  let other: typeof import('../errors');
  beforeAll(() => {
    jest.isolateModules(() => { other = jest.requireActual('../errors'); });
    expect(other.PermanentError).not.toBe(PermanentError);
  });

  it('are recognized only by the classes that classify: another copy\'s MappingError is a PermanentError, not this copy\'s MappingError', () => {
    const foreign = new other.MappingError([{ field: 'payload', message: 'x' }]);
    expect(foreign instanceof PermanentError).toBe(true);
    expect(foreign instanceof MappingError).toBe(false);
  });

  it('are recognized by their class, and only by their own class', () => {
    const permanent = new other.PermanentError('ERR_X', 'x');
    expect(permanent instanceof PermanentError).toBe(true);
    expect(permanent instanceof SyncError).toBe(true);
    expect(permanent instanceof RetryableError).toBe(false);
    expect(new other.RetryableError('ERR_Y', 'y') instanceof RetryableError).toBe(true);
    expect(new Error('plain') instanceof SyncError).toBe(false);
    expect(Object.assign(new Error('look-alike'), { code: 'ERR_X', retryable: false }) instanceof PermanentError).toBe(false);
    expect(new PermanentError('ERR_Z', 'z') instanceof other.PermanentError).toBe(true);
  });

  it('keep their classification through the engine', async () => {
    const err = await failure({ kind: 'auth', name: 'other-copy', apply: () => { throw new other.PermanentError('ERR_AUTH_PARAM_TAKEN', 'taken'); } });
    expect(err).toMatchObject({ code: 'ERR_AUTH_PARAM_TAKEN', retryable: false, context: { contactId: 'c1' } });
  });
});

describe('the adapter registry', () => {
  it('refuses a second adapter under a name that is taken, and takes the same one again', () => {
    const container = rootContainer.createChildContainer();
    const builtIn = resolveAdapter('auth', 'auth-key', container);
    expect(() => registerAdapter(builtIn, container)).not.toThrow();
    const shadow: AuthAdapter = { kind: 'auth', name: 'auth-key', apply: () => undefined };
    expect(() => registerAdapter(shadow, container)).toThrow(expect.objectContaining({ code: 'ERR_ADAPTER_TAKEN', message: expect.stringContaining('"auth-key" is registered already') }));
    expect(resolveAdapter('auth', 'auth-key', container)).toBe(builtIn);
    // A flow of the same name is another adapter.
    expect(() => registerAdapter({ kind: 'flow', name: 'auth-key', requires: [], run: async () => ({ action: 'created' }) }, container)).not.toThrow();
  });

  it.each<[string, unknown, string]>([
    ['an auth adapter without apply', { kind: 'auth', name: 'no-apply' }, 'the auth adapter "no-apply" cannot be used: it has no apply(request, credential, options) function'],
    ['an auth adapter named none', { kind: 'auth', name: 'none', apply: () => undefined }, 'the auth adapter "none" cannot be used: "none" is the name of no auth adapter at all; choose another'],
    ['an empty name', { kind: 'auth', name: ' ', apply: () => undefined }, 'the auth adapter " " cannot be used: its name must be a non-empty text without leading or trailing spaces'],
    ['a credential that is not a function', { kind: 'auth', name: 'half', apply: () => undefined, credential: 'token' }, 'the auth adapter "half" cannot be used: its credential is not a function'],
    ['options that are not a JSON Schema', { kind: 'auth', name: 'bad-schema', apply: () => undefined, optionsSchema: { type: 'objekt' } },
      'the auth adapter "bad-schema" cannot be used: its optionsSchema is not a valid JSON Schema: schema is invalid: data/type must be equal to one of the allowed values'],
    ['a flow without run', { kind: 'flow', name: 'no-run', requires: [] }, 'the flow adapter "no-run" cannot be used: it has no run(ops) function'],
    ['a flow requiring an endpoint that does not exist', { kind: 'flow', name: 'notes', requires: ['fetch', 'note'], run: async () => undefined },
      'the flow adapter "notes" cannot be used: its requires names "note", which no mapping can declare (the endpoints are fetch, create, update, upsert)'],
  ])('refuses %s when it is registered, naming it', (_what, adapter, message) => {
    const container = rootContainer.createChildContainer();
    expect(() => registerAdapter(adapter as AuthAdapter, container)).toThrow(expect.objectContaining({ code: 'ERR_ADAPTER_INVALID', message: expect.stringContaining(message) }));
  });

  it('takes a plug-in named like its package (a mapping can name it: adapter: "@acme/oauth")', () => {
    const container = rootContainer.createChildContainer();
    expect(() => registerAdapter({ kind: 'auth', name: '@acme/oauth', apply: () => undefined }, container)).not.toThrow();
    expect(resolveAdapter('auth', '@acme/oauth', container).name).toBe('@acme/oauth');
  });

  it('names the adapters there are when one is unknown', () => {
    const err = (() => { try { resolveAdapter('auth', 'authkey'); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(`no auth adapter named "authkey" is registered; the auth adapters are ${adapterNames('auth').join(', ')}`);
    expect(adapterNames('auth')).toEqual(expect.arrayContaining(['auth-key', 'bearer', 'body-secret', 'hmac']));
  });
});

describe('a refused credential', () => {
  /** Hands out tok-1, then tok-2 once tok-1 is refused. */
  const tokens: AuthAdapter = {
    kind: 'auth', name: 'token-exchange',
    apply: (req, credential) => { req.headers.Authorization = `Bearer ${credential}`; },
    credential: async (_secret, _options, ctx) => (ctx.rejected === 'tok-1' ? 'tok-2' : 'tok-1'),
  };
  const expired = { status: 403, body: { code: 'TOKEN_EXPIRED', status: 'Failed' } };
  const run = async (extraResponses: string) => {
    const http = new CannedHttpClient({ fetch: [expired, { status: 404, body: { status: 'Not Found' } }] });
    const outcome = await new SyncEngine({ http, secrets: () => SECRET }).sync(mappingWith(tokens, extraResponses), contact).then((r) => r.action, (e: SyncError) => e.code);
    return { outcome, sent: http.requests.map((r) => `${r.step} ${r.headers.Authorization}`) };
  };

  it('is renewed and the request sent again when the credentialRejected reader says so (a 403 with the CRM\'s own code)', async () => {
    expect(await run('  credentialRejected: status = 401 or (status = 403 and body.code = "TOKEN_EXPIRED")\n')).toEqual({
      outcome: 'created', sent: ['fetch Bearer tok-1', 'fetch Bearer tok-2', 'create Bearer tok-2'],
    });
  });

  it('a refusal inside an HTTP 200, said by the reader, is renewed too; refused twice it is ERR_CRM_AUTH; a reader that cannot read a success is false', async () => {
    const inBody = { status: 200, body: { status: 'Failed', error: 'token expired' } };
    const http = new CannedHttpClient({ fetch: [inBody, inBody] });
    const err = await new SyncEngine({ http, secrets: () => SECRET }).sync(mappingWith(tokens, '  credentialRejected: $contains(body.error, "expired")\n'), contact).then(() => undefined, (e: SyncError) => e);
    expect(http.requests.map((r) => r.headers.Authorization)).toEqual(['Bearer tok-1', 'Bearer tok-2']);
    expect(err).toMatchObject({ code: 'ERR_CRM_AUTH', retryable: false });
    // $contains on an object body cannot be evaluated: a success stays a success.
    const ok = new CannedHttpClient({ fetch: { status: 404, body: { status: 'Not Found' } } });
    expect((await new SyncEngine({ http: ok, secrets: () => SECRET }).sync(mappingWith(tokens, '  credentialRejected: $contains(body, "expired")\n'), contact)).action).toBe('created');
  });

  it('by default only on a 401: the 403 fails the sync as ERR_CRM_AUTH', async () => {
    expect(await run('')).toEqual({ outcome: 'ERR_CRM_AUTH', sent: ['fetch Bearer tok-1'] });
  });
});
