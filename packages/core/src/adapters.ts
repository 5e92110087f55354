import 'reflect-metadata';
import Ajv from 'ajv';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { ConfigError, type ErrorContext } from './errors';
import type { HttpClient } from './http/client';

export type EndpointName = 'fetch' | 'create' | 'update' | 'upsert';

/** A request the engine has built and an auth adapter may add its secret to, before the body is encoded. */
export interface OutgoingRequest {
  method: string;
  url: URL;
  /** Header names as the mapping wrote them; the HTTP client sends them as they are. */
  headers: Record<string, string>;
  /** The body as data (JSON value) before encoding; undefined for a request without a body. */
  body: unknown;
}

/** A request as it will be sent: its body encoded (what `AuthAdapter.sign` signs). */
export interface SignableRequest {
  readonly method: string;
  /** Query parameters may still be added (the path and query are sent as `pathname + search`). */
  readonly url: URL;
  /** Header names as the mapping wrote them: add the signature (and what it covers, e.g. a timestamp) here. */
  headers: Record<string, string>;
  /** The exact body text sent (JSON or form-encoded); undefined for a request without a body. */
  readonly body: string | undefined;
}

/**
 * An auth style: adds the customer's secret to every request. The engine resolves the secret
 * (`env:NAME`, `file:PATH`) and masks it everywhere it records a request; the adapter never logs.
 */
export interface AuthAdapter {
  readonly kind: 'auth';
  readonly name: string;
  /** JSON Schema of the adapter's options (the mapping's `auth` block less `adapter` and `secret`). */
  readonly optionsSchema?: Record<string, unknown>;
  /**
   * Adds the credential to a request. Without a `credential` step, the credential is the mapping's secret itself;
   * with one, it is what `credential` returned.
   */
  apply(request: OutgoingRequest, secret: string, options: Record<string, unknown>): void;
  /**
   * Optional: exchanges the mapping's secret for the credential `apply` adds, e.g. an OAuth 2.0 access token obtained
   * with a refresh token or client credentials. The engine calls it before a sync's first request, and once more with
   * `rejected` set when the CRM answers 401 to a request that carried it (the request is then sent again, once). Keep
   * the credential cached until it expires: many syncs call this at once, and a 401 reaches all of them. Throw a RetryableError or PermanentError (from
   * `@crm-sync/core`) for a failure; the engine masks the secret, every secret resolved through the context and the
   * credential it returns in everything it records.
   */
  credential?(secret: string, options: Record<string, unknown>, ctx: CredentialContext): Promise<string>;
  /**
   * Optional: what else the options point at, by field (e.g. `auth.oauth.clientSecret`): secret references the
   * runner resolves and URLs it checks against the network policy at start-up, so a mistake fails there and not at
   * the first sync.
   */
  references?(options: Record<string, unknown>): AuthReferences;
  /**
   * Optional: signs a request once its body is encoded, so a signature (an HMAC) covers the exact text sent. Runs
   * after `apply`, with the same credential, for every request (also one sent again after a 401, which is signed
   * again); `now` is the engine's clock, for a timestamp. Add headers or query parameters; the body cannot change.
   */
  sign?(request: SignableRequest, credential: string, options: Record<string, unknown>, ctx: { now(): number }): void;
  /**
   * Optional: values `apply` makes from the credential that reveal it (Basic auth's base64 of `user:password`). The
   * engine masks them wherever it masks the credential: recorded requests, errors, the CRM's echoed answers, logs.
   * A value derived one way (an HMAC) reveals nothing and need not be listed.
   */
  derivedSecrets?(credential: string, options: Record<string, unknown>): string[];
}

export interface AuthReferences {
  /** Secret references (`env:NAME`, `file:PATH`) by the field that names them. */
  secrets?: Record<string, string>;
  /** URLs the adapter will request, by the field that names them. */
  urls?: Record<string, string>;
}

/** What an auth adapter's `credential` step gets from the engine. */
export interface CredentialContext {
  /**
   * The engine's HTTP client, under the same network policy as the CRM's requests (https unless allow-listed, SSRF
   * checks, TLS verification, size caps). Each call is recorded in the sync's calls as step `auth` (URL masked).
   */
  http: HttpClient;
  /** Resolves another secret reference among the adapter's options (`env:NAME`, `file:PATH`); its value is masked too. */
  resolveSecret(ref: string): string;
  /**
   * Masks a value the adapter came by itself, in everything this sync records from now on, as its secrets are: a
   * session id or a refresh token a login answer holds, before it becomes the credential or when it never does.
   */
  maskAlso(value: string): void;
  /** Milliseconds since the epoch, from the engine's clock. */
  now(): number;
  /**
   * The credential the CRM just refused (HTTP 401), if that is why this is called: return another one. If the cached
   * one is already another (a concurrent sync renewed it), return that rather than asking the token endpoint again.
   */
  rejected?: string;
  /** The mapping's request timeout, for the adapter's own requests. */
  timeoutMs: number;
  /** Where the sync is (tenant, contact), for the errors the adapter throws. */
  errorContext: ErrorContext;
}

/** What a flow adapter may ask the engine to do. Each operation is one engine rule, with its safety built in. */
export interface FlowOperations {
  /** The lead id stored for this contact, if any. */
  readonly knownLeadId?: string;
  /** Whether the mapping declares this endpoint. */
  has(endpoint: EndpointName): boolean;
  /**
   * Runs the mapping's match chain against the fetch endpoint. Resolves to the lead id, or undefined when the CRM
   * answered "not found" for every key. Any failure throws: a failing fetch is never "not found".
   */
  find(): Promise<string | undefined>;
  /** Creates the lead. A conflict answer carrying the existing id is adopted and updated instead. */
  create(): Promise<FlowOutcome>;
  update(leadId: string): Promise<FlowOutcome>;
  upsert(): Promise<FlowOutcome>;
  /**
   * Ends the sync without a write, for a flow that decides the CRM should not hear of this contact (an update-only
   * flow, and a contact the CRM does not know): return what it gives. The contact is settled with no lead, its
   * history says `skipped` and why; its next change is synced again. After a write, the write's outcome stands.
   */
  skip(reason: string): FlowOutcome;
}

export type SyncAction = 'created' | 'updated' | 'upserted' | 'skipped';

export interface FlowOutcome {
  action: SyncAction;
  leadId?: string;
  /** skipped: why (FlowOperations.skip). */
  reason?: string;
}

/** A flow variation: which calls a sync makes, in what order. Shapes nothing itself; the engine does the calls. */
export interface FlowAdapter {
  readonly kind: 'flow';
  readonly name: string;
  /** Endpoints the mapping must declare for this flow. */
  readonly requires: readonly EndpointName[];
  run(ops: FlowOperations): Promise<FlowOutcome>;
}

export type Adapter = AuthAdapter | FlowAdapter;

/** The tsyringe token an adapter is registered under, e.g. `crm-sync:flow:upsert`. */
export function adapterToken(kind: Adapter['kind'], name: string): string {
  return `crm-sync:${kind}:${name}`;
}

/** Every adapter name registered in any container, so an error can list the ones a container knows. */
const registeredNames: Record<Adapter['kind'], Set<string>> = { auth: new Set(), flow: new Set() };

/**
 * Registers an adapter under its kind and name. A name already taken by another adapter (a built-in, or another
 * plugin) is refused: the last one loaded would otherwise silently replace it for every mapping that names it.
 * Registering the same adapter again changes nothing.
 */
export function registerAdapter(adapter: Adapter, container: DependencyContainer = rootContainer): void {
  checkAdapter(adapter);
  const token = adapterToken(adapter.kind, adapter.name);
  if (container.isRegistered(token, true)) {
    if (container.resolve(token) === adapter) return;
    throw new ConfigError(`a ${adapter.kind} adapter named ${JSON.stringify(adapter.name)} is registered already (built in, or by another plugin); give this one another name`, 'ERR_ADAPTER_TAKEN');
  }
  container.register(token, { useValue: adapter });
  registeredNames[adapter.kind].add(adapter.name);
}

const ENDPOINT_NAMES: readonly string[] = ['fetch', 'create', 'update', 'upsert'];
const OPTIONAL_AUTH_METHODS = ['credential', 'sign', 'references', 'derivedSecrets'] as const;
const schemaChecker = new Ajv({ allErrors: true, strict: false });

/**
 * What a mapping could never use, refused when the adapter is registered (the daemon's start, `validate --plugin`)
 * rather than found by every sync: a name a mapping cannot spell, an auth adapter without `apply` or called `none`,
 * a flow without `run` or requiring an endpoint that does not exist, options that are not a JSON Schema.
 */
function checkAdapter(adapter: Adapter): void {
  const problems: string[] = [];
  const name = adapter.name;
  if (typeof name !== 'string' || name.trim() === '' || name !== name.trim()) problems.push('its name must be a non-empty text without leading or trailing spaces');
  if (adapter.kind === 'auth') {
    if (name === 'none') problems.push('"none" is the name of no auth adapter at all; choose another');
    if (typeof adapter.apply !== 'function') problems.push('it has no apply(request, credential, options) function');
    for (const m of OPTIONAL_AUTH_METHODS) if (adapter[m] !== undefined && typeof adapter[m] !== 'function') problems.push(`its ${m} is not a function`);
    if (adapter.optionsSchema !== undefined) {
      if (typeof adapter.optionsSchema !== 'object' || adapter.optionsSchema === null || Array.isArray(adapter.optionsSchema)) problems.push('its optionsSchema is not a JSON Schema object');
      else {
        try {
          schemaChecker.compile(adapter.optionsSchema);
        } catch (err) {
          problems.push(`its optionsSchema is not a valid JSON Schema: ${(err as Error).message}`);
        }
      }
    }
  } else {
    if (typeof adapter.run !== 'function') problems.push('it has no run(ops) function');
    if (!Array.isArray(adapter.requires)) problems.push('its requires is not an array of endpoint names');
    else {
      const unknown = adapter.requires.filter((e) => !ENDPOINT_NAMES.includes(e));
      if (unknown.length > 0) problems.push(`its requires names ${unknown.map((e) => JSON.stringify(e)).join(', ')}, which no mapping can declare (the endpoints are ${ENDPOINT_NAMES.join(', ')})`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`the ${adapter.kind} adapter ${JSON.stringify(name)} cannot be used: ${problems.join('; ')}`, 'ERR_ADAPTER_INVALID');
}

/** The names of the adapters of a kind that a container resolves, sorted. */
export function adapterNames(kind: Adapter['kind'], container: DependencyContainer = rootContainer): string[] {
  return [...registeredNames[kind]].filter((n) => container.isRegistered(adapterToken(kind, n), true)).sort();
}

function isAdapter(v: unknown): v is Adapter {
  return typeof v === 'object' && v !== null && ((v as Adapter).kind === 'auth' || (v as Adapter).kind === 'flow')
    && typeof (v as Adapter).name === 'string';
}

/**
 * Registers every adapter a module exports (`export const adapter = …`, `export default …`, or `export const adapters = […]`).
 * This is how a third-party package plugs in: list it under `plugins` in the runner config (or `--plugin`).
 */
export function registerAdapterModule(mod: unknown, container: DependencyContainer = rootContainer): Adapter[] {
  const m = mod as Record<string, unknown>;
  const found = [m?.adapter, m?.default, ...(Array.isArray(m?.adapters) ? m.adapters : [])].filter(isAdapter);
  if (found.length === 0) throw new ConfigError('the module exports no crm-sync adapter (expected `adapter`, `adapters` or a default export)', 'ERR_ADAPTER_INVALID');
  for (const a of found) registerAdapter(a, container);
  return found;
}

export function resolveAdapter<K extends Adapter['kind']>(kind: K, name: string, container: DependencyContainer = rootContainer):
  Extract<Adapter, { kind: K }> {
  const token = adapterToken(kind, name);
  if (!container.isRegistered(token, true)) {
    const known = adapterNames(kind, container);
    throw new ConfigError(`no ${kind} adapter named ${JSON.stringify(name)} is registered${known.length > 0 ? `; the ${kind} adapters are ${known.join(', ')}` : ''}`, 'ERR_ADAPTER_UNKNOWN');
  }
  return container.resolve<Extract<Adapter, { kind: K }>>(token);
}
