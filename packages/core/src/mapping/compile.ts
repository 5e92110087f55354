import { createHash } from 'node:crypto';
import Ajv from 'ajv';
import { LRUCache } from 'lru-cache';
import type { DependencyContainer } from 'tsyringe';
import { resolveAdapter, type AuthAdapter, type EndpointName, type FlowAdapter } from '../adapters';
import { ConfigError, MappingError, type FieldError } from '../errors';
import { compileExpression, compileTemplate, constructedKeys, inputRoots, type CompiledExpression, type CompiledTemplate, type TemplateScope } from './expressions';
import { formatAjvErrors, parseMappingText, type ParsedMapping } from './load';
import type { Encoding, EndpointDefinition, MappingDefinition, ReaderDefinitions, ReaderName } from './types';

export const DEFAULT_READERS: Required<Omit<ReaderDefinitions, 'conflictLeadId'>> = {
  leadId: 'body.lead_id',
  notFound: 'status = 404',
  failed: 'status >= 400',
  retryable: 'status = 408 or status = 425 or status = 429 or status >= 500',
  reason: 'body.reason',
  stale: 'status = 404 or status = 410',
  leadFields: 'body.lead_fields',
  credentialRejected: 'status = 401',
  rateLimited: 'status = 429',
};

export interface CompiledEndpoint {
  readonly name: EndpointName;
  readonly method: string;
  readonly url: CompiledTemplate;
  readonly query: Array<[string, CompiledTemplate]>;
  readonly headers: Array<[string, CompiledTemplate]>;
  /** undefined: the default body (the payload, none for fetch); null: no body. */
  readonly body: CompiledExpression | null | undefined;
  readonly encoding: Encoding;
  readonly readers: Partial<Record<ReaderName, CompiledExpression>>;
}

export interface CompiledMapping {
  readonly name: string;
  readonly file?: string;
  /** sha256 of the file's text: the cache key, and how a runner tells that a mapping changed. */
  readonly hash: string;
  readonly definition: MappingDefinition;
  readonly flow: FlowAdapter;
  readonly auth: AuthAdapter | undefined;
  readonly authOptions: Record<string, unknown>;
  readonly payload: CompiledExpression;
  /** The mapping's `vars`: values for the requests, evaluated with the payload, never sent as it. */
  readonly vars?: CompiledExpression;
  /** The payload, vars or fetch body call `$now`, `$millis` or `$random`: two renderings of a fetch can differ by them. */
  readonly fetchUsesClock?: boolean;
  readonly endpoints: Partial<Record<EndpointName, CompiledEndpoint>>;
  readonly rateLimit: { requestsPerSecond?: number; remaining?: CompiledExpression; resetMs?: CompiledExpression };
}

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const ENDPOINTS: EndpointName[] = ['fetch', 'create', 'update', 'upsert'];
const READERS: ReaderName[] = ['leadId', 'notFound', 'failed', 'retryable', 'reason', 'conflictLeadId', 'stale', 'leadFields', 'credentialRejected', 'rateLimited'];
/** Readers only one endpoint's answers are read with (the others never evaluate them, so they are not compiled there). */
const ONLY_FOR: Partial<Record<ReaderName, EndpointName>> = { leadFields: 'fetch' };

function compileReaders(name: EndpointName, own: ReaderDefinitions | undefined, shared: ReaderDefinitions | undefined, prefix: string, problems: Problems, file?: string) {
  const out: Partial<Record<ReaderName, CompiledExpression>> = {};
  for (const r of READERS) {
    if (ONLY_FOR[r] !== undefined && ONLY_FOR[r] !== name) continue;
    const ownSrc = own?.[r];
    const src = ownSrc ?? shared?.[r] ?? (DEFAULT_READERS as ReaderDefinitions)[r];
    if (src) out[r] = problems.collect(() => compileExpression(src, ownSrc ? `${prefix}.responses.${r}` : shared?.[r] ? `responses.${r}` : `(default responses.${r})`, file));
  }
  return out;
}

/** What every endpoint's templates are rendered with (SyncEngine.buildRequest), for checking them when compiled. */
const TEMPLATE_NAMES: TemplateScope['names'] = {
  contact: ['tenant', 'contactId', 'phone', 'email', 'name', 'tags', 'attributes', 'eventId', 'ts'],
  leadId: [],
  tenant: [],
  match: ['key', 'value'],
  payload: 'any',
  vars: 'any',
  secrets: [],
};
/** The names an endpoint is never given: the engine sends create before a lead id exists, and matches only by fetch. */
const NEVER_SET: Record<EndpointName, Record<string, string>> = {
  fetch: {},
  create: { leadId: 'create is sent when there is no lead id yet', match: 'only fetch is sent with a match' },
  update: { match: 'only fetch is sent with a match' },
  upsert: { match: 'only fetch is sent with a match' },
};

/**
 * The mistakes of a whole mapping, gathered: each template and expression is compiled even after one failed, so a
 * mapping's author sees every one at once rather than one per run.
 */
class Problems {
  private readonly errors: FieldError[] = [];
  private code: string | undefined;

  /** f's value, or undefined (its errors kept) when it threw a MappingError. */
  collect<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof MappingError)) throw err;
      // A shared reader is compiled once per endpoint: its mistake is reported once.
      for (const e of err.errors) if (!this.errors.some((o) => o.field === e.field && o.message === e.message)) this.errors.push(e);
      this.code ??= err.code;
      return undefined as T; // never used: throwIfAny throws before the compiled mapping is returned
    }
  }

  throwIfAny(file?: string): void {
    if (this.errors.length > 0) throw new MappingError(this.errors, { file, code: this.code });
  }
}

function compileEndpoint(name: EndpointName, def: EndpointDefinition, mapping: MappingDefinition, problems: Problems, file?: string): CompiledEndpoint {
  const at = `endpoints.${name}`;
  // Without a match chain, fetch is sent once with the contact, and no match.
  const neverSet = name === 'fetch' && !mapping.match ? { match: 'the mapping has no match chain (match: [phone, email])' } : NEVER_SET[name];
  // vars written as an object constructor name their keys, so `{{vars.serchPhone}}` is caught as other names are.
  const varsKeys = mapping.vars === undefined ? [] : constructedKeys(mapping.vars) ?? 'any';
  const scope: TemplateScope = { names: { ...TEMPLATE_NAMES, secrets: Object.keys(mapping.secrets ?? {}), vars: varsKeys }, neverSet };
  return {
    name,
    method: def.method,
    url: problems.collect(() => compileTemplate(def.url, `${at}.url`, { strict: true, encode: true, file, scope })),
    query: withShared(mapping.query, def.query, (k) => k).map(([k, v, shared]) => [k, problems.collect(() => compileTemplate(v, `${shared ? '' : `${at}.`}query.${k}`, { strict: false, encode: false, file, scope }))]),
    headers: withShared(mapping.headers, def.headers, (k) => k.toLowerCase()).map(([k, v, shared]) => [k, problems.collect(() => compileTemplate(v, `${shared ? '' : `${at}.`}headers.${k}`, { strict: false, encode: false, file, scope }))]),
    body: def.body === null ? null : def.body === undefined ? undefined : problems.collect(() => compileExpression(def.body!, `${at}.body`, file)),
    encoding: def.encoding ?? mapping.encoding ?? 'json',
    readers: compileReaders(name, def.responses, mapping.responses, at, problems, file),
  };
}

/**
 * The mapping's shared entries (query parameters, headers) that the endpoint does not set itself (names compared as
 * `key` says: headers in any case), then the endpoint's own; each with whether it is the shared one.
 */
function withShared(shared: Record<string, string> | undefined, own: Record<string, string> | undefined, key: (name: string) => string): Array<[string, string, boolean]> {
  const mine = new Map(Object.entries(own ?? {}).map(([k, v]) => [key(k), [k, v] as const]));
  // The shared ones in their order, an endpoint's own of the same name in its place; then the endpoint's others.
  const out = Object.entries(shared ?? {}).map(([k, v]): [string, string, boolean] => {
    const o = mine.get(key(k));
    return o ? [o[0], o[1], false] : [k, v, true];
  });
  const sharedKeys = new Set(Object.keys(shared ?? {}).map(key));
  return [...out, ...Object.entries(own ?? {}).filter(([k]) => !sharedKeys.has(key(k))).map(([k, v]): [string, string, boolean] => [k, v, false])];
}

/** Compiles a validated definition: resolves adapters, compiles every JSONata expression and URL template once. */
export function compileDefinition(definition: MappingDefinition, opts: { hash: string; file?: string; container?: DependencyContainer }): CompiledMapping {
  const { file } = opts;
  const wrap = (field: string, f: () => any) => {
    try { return f(); } catch (err) {
      if (err instanceof ConfigError) throw new MappingError([{ field, message: err.message }], { file, code: err.code });
      throw err;
    }
  };
  const flow: FlowAdapter = wrap('flow', () => resolveAdapter('flow', definition.flow ?? 'fetch-create-update', opts.container));
  const { adapter: authName, secret, ...authOptions } = definition.auth;
  const auth: AuthAdapter | undefined = authName === 'none' ? undefined : wrap('auth.adapter', () => resolveAdapter('auth', authName, opts.container));
  if (auth && !secret) throw new MappingError([{ field: 'auth.secret', message: `is required by the ${authName} adapter (env:NAME or file:PATH)` }], { file });
  if (auth?.optionsSchema) {
    const validate = ajv.compile(auth.optionsSchema);
    if (!validate(authOptions)) throw new MappingError(formatAjvErrors(validate.errors, 'auth'), { file });
  }
  const missing = flow.requires.filter((e) => !definition.endpoints[e]);
  if (missing.length > 0) {
    throw new MappingError(missing.map((e) => ({ field: `endpoints.${e}`, message: `is required by the ${flow.name} flow` })), { file });
  }
  const problems = new Problems();
  const payload = problems.collect(() => compileExpression(definition.payload, 'payload', file));
  const vars = definition.vars === undefined ? undefined : problems.collect(() => compileExpression(definition.vars!, 'vars', file));
  // Only requests see the named secrets: the payload is stored and compared, and vars are made before them.
  for (const [field, source] of [['payload', definition.payload], ['vars', definition.vars]] as const) {
    if (source !== undefined && inputRoots(source).includes('secrets')) {
      problems.collect(() => { throw new MappingError([{ field, message: 'reads secrets, which only the requests see (the payload is stored and compared): use {{secrets.<name>}} in a url, query or header template, or secrets.<name> in a body' }], { file, code: 'ERR_MAPPING_EXPRESSION' }); });
    }
  }
  const endpoints: Partial<Record<EndpointName, CompiledEndpoint>> = {};
  for (const e of ENDPOINTS) {
    const def = definition.endpoints[e];
    if (def) endpoints[e] = compileEndpoint(e, def, definition, problems, file);
  }
  const rl = definition.rateLimit ?? {};
  const rateLimit = {
    requestsPerSecond: rl.requestsPerSecond,
    remaining: rl.remaining ? problems.collect(() => compileExpression(rl.remaining!, 'rateLimit.remaining', file)) : undefined,
    resetMs: rl.resetMs ? problems.collect(() => compileExpression(rl.resetMs!, 'rateLimit.resetMs', file)) : undefined,
  };
  problems.throwIfAny(file);
  const clock = /\$(?:now|millis|random)\s*\(/;
  const fetchUsesClock = [definition.payload, definition.vars, definition.endpoints.fetch?.body].some((src) => typeof src === 'string' && clock.test(src));
  return { name: definition.name, file, hash: opts.hash, definition, flow, auth, authOptions, payload, ...(vars ? { vars } : {}), fetchUsesClock, endpoints, rateLimit };
}

const cache = new LRUCache<string, CompiledMapping>({ max: 1000 });

/**
 * Parses, validates and compiles a mapping file's text; compiled mappings are cached by content hash (and file name, so
 * errors keep naming the right file), so a runner with a thousand tenants sharing a mapping compiles it once.
 */
export function compileMapping(text: string, opts: { file?: string; container?: DependencyContainer } = {}): CompiledMapping {
  const hash = createHash('sha256').update(text).digest('hex');
  const key = `${hash}\u0000${opts.file ?? ''}`;
  const hit = opts.container ? undefined : cache.get(key);
  if (hit) return hit;
  const parsed = parseMappingText(text, opts.file);
  let compiled: CompiledMapping;
  try {
    compiled = compileDefinition(parsed.definition, { hash, file: opts.file, container: opts.container });
  } catch (err) {
    throw err instanceof MappingError ? withLines(err, parsed) : err;
  }
  if (!opts.container) cache.set(key, compiled);
  return compiled;
}

/**
 * The file's line added to each error compileDefinition found (it sees the parsed definition, not the text): the
 * field's line, or for a JSONata error at a position in a `|` block, that position's line.
 */
function withLines(err: MappingError, parsed: ParsedMapping): MappingError {
  const errors = err.errors.map((e) => {
    if (/\(line \d+\)$/.test(e.message)) return e;
    const position = /at position (\d+)/.exec(e.message);
    const line = parsed.lineOf(e.field, position ? Number(position[1]) : undefined);
    return line === undefined ? e : { ...e, message: `${e.message} (line ${line})` };
  });
  return new MappingError(errors, { file: err.file, code: err.code, cause: err.cause });
}
