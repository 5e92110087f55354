import { createHash } from 'node:crypto';
import Ajv from 'ajv';
import { LRUCache } from 'lru-cache';
import type { DependencyContainer } from 'tsyringe';
import { resolveAdapter, type AuthAdapter, type EndpointName, type FlowAdapter } from '../adapters';
import { ConfigError, MappingError } from '../errors';
import { compileExpression, compileTemplate, type CompiledExpression, type CompiledTemplate } from './expressions';
import { formatAjvErrors, parseMapping } from './load';
import type { Encoding, EndpointDefinition, MappingDefinition, ReaderDefinitions, ReaderName } from './types';

export const DEFAULT_READERS: Required<Omit<ReaderDefinitions, 'conflictLeadId'>> = {
  leadId: 'body.lead_id',
  notFound: 'status = 404',
  failed: 'status >= 400',
  retryable: 'status = 408 or status = 425 or status = 429 or status >= 500',
  reason: 'body.reason',
  stale: 'status = 404 or status = 410',
  leadFields: 'body.lead_fields',
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
  readonly endpoints: Partial<Record<EndpointName, CompiledEndpoint>>;
  readonly rateLimit: { requestsPerSecond?: number; remaining?: CompiledExpression; resetMs?: CompiledExpression };
}

const ajv = new Ajv({ allErrors: true, strict: false });
const ENDPOINTS: EndpointName[] = ['fetch', 'create', 'update', 'upsert'];
const READERS: ReaderName[] = ['leadId', 'notFound', 'failed', 'retryable', 'reason', 'conflictLeadId', 'stale', 'leadFields'];
/** Readers only one endpoint's answers are read with (the others never evaluate them, so they are not compiled there). */
const ONLY_FOR: Partial<Record<ReaderName, EndpointName>> = { leadFields: 'fetch' };

function compileReaders(name: EndpointName, own: ReaderDefinitions | undefined, shared: ReaderDefinitions | undefined, prefix: string, file?: string) {
  const out: Partial<Record<ReaderName, CompiledExpression>> = {};
  for (const r of READERS) {
    if (ONLY_FOR[r] !== undefined && ONLY_FOR[r] !== name) continue;
    const ownSrc = own?.[r];
    const src = ownSrc ?? shared?.[r] ?? (DEFAULT_READERS as ReaderDefinitions)[r];
    if (src) out[r] = compileExpression(src, ownSrc ? `${prefix}.responses.${r}` : shared?.[r] ? `responses.${r}` : `(default responses.${r})`, file);
  }
  return out;
}

function compileEndpoint(name: EndpointName, def: EndpointDefinition, mapping: MappingDefinition, file?: string): CompiledEndpoint {
  const at = `endpoints.${name}`;
  return {
    name,
    method: def.method,
    url: compileTemplate(def.url, `${at}.url`, { strict: true, encode: true, file }),
    query: Object.entries(def.query ?? {}).map(([k, v]) => [k, compileTemplate(v, `${at}.query.${k}`, { strict: false, encode: false, file })]),
    headers: Object.entries(def.headers ?? {}).map(([k, v]) => [k, compileTemplate(v, `${at}.headers.${k}`, { strict: false, encode: false, file })]),
    body: def.body === null ? null : def.body === undefined ? undefined : compileExpression(def.body, `${at}.body`, file),
    encoding: def.encoding ?? mapping.encoding ?? 'json',
    readers: compileReaders(name, def.responses, mapping.responses, at, file),
  };
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
  const endpoints: Partial<Record<EndpointName, CompiledEndpoint>> = {};
  for (const e of ENDPOINTS) {
    const def = definition.endpoints[e];
    if (def) endpoints[e] = compileEndpoint(e, def, definition, file);
  }
  const rl = definition.rateLimit ?? {};
  return {
    name: definition.name,
    file,
    hash: opts.hash,
    definition,
    flow,
    auth,
    authOptions,
    payload: compileExpression(definition.payload, 'payload', file),
    endpoints,
    rateLimit: {
      requestsPerSecond: rl.requestsPerSecond,
      remaining: rl.remaining ? compileExpression(rl.remaining, 'rateLimit.remaining', file) : undefined,
      resetMs: rl.resetMs ? compileExpression(rl.resetMs, 'rateLimit.resetMs', file) : undefined,
    },
  };
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
  const compiled = compileDefinition(parseMapping(text, opts.file), { hash, file: opts.file, container: opts.container });
  if (!opts.container) cache.set(key, compiled);
  return compiled;
}
