import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { ConfigError } from './errors';

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

/**
 * An auth style: adds the customer's secret to every request. The engine resolves the secret
 * (`env:NAME`, `file:PATH`) and masks it everywhere it records a request; the adapter never logs.
 */
export interface AuthAdapter {
  readonly kind: 'auth';
  readonly name: string;
  /** JSON Schema of the adapter's options (the mapping's `auth` block less `adapter` and `secret`). */
  readonly optionsSchema?: Record<string, unknown>;
  apply(request: OutgoingRequest, secret: string, options: Record<string, unknown>): void;
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
}

export type SyncAction = 'created' | 'updated' | 'upserted';

export interface FlowOutcome {
  action: SyncAction;
  leadId?: string;
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

export function registerAdapter(adapter: Adapter, container: DependencyContainer = rootContainer): void {
  container.register(adapterToken(adapter.kind, adapter.name), { useValue: adapter });
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
    throw new ConfigError(`no ${kind} adapter named ${JSON.stringify(name)} is registered`, 'ERR_ADAPTER_UNKNOWN');
  }
  return container.resolve<Extract<Adapter, { kind: K }>>(token);
}
