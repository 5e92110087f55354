import { PermanentError, type EndpointName, type FlowOperations, type FlowOutcome } from '@crm-sync/core';

export type FlowOperationName = 'has' | 'find' | 'create' | 'update' | 'upsert' | 'skip';

export interface RecordedOperation {
  op: FlowOperationName;
  /** has(): the endpoint asked about; update(): the lead id. */
  arg?: string;
  /** What the operation gave back (has(): the boolean; find(): the id; writes: the outcome). */
  result?: unknown;
  /** What it threw. */
  error?: unknown;
}

export interface RecordingFlowOperationsOptions {
  knownLeadId?: string;
  /** Endpoints the mapping declares. Default: all four. */
  endpoints?: readonly EndpointName[];
  /** What find() resolves to: the found lead's id, or undefined for "not found". */
  found?: string;
  /** When set, find() throws it (a failing fetch). */
  findError?: Error;
  /** When set, create/update/upsert throw it. */
  writeError?: Error;
}

/** The ids the fake hands out, so tests can tell where an outcome's lead id came from. */
export const RECORDED_IDS = { created: 'L-created', upserted: 'L-upserted' } as const;

const ENDPOINT_OF: Record<Exclude<FlowOperationName, 'has' | 'skip'>, EndpointName> = { find: 'fetch', create: 'create', update: 'update', upsert: 'upsert' };

/**
 * A FlowOperations that performs nothing and records every call: the boundary between a flow adapter and the engine.
 * Like the engine, it refuses an operation on an endpoint the mapping does not declare.
 */
export class RecordingFlowOperations implements FlowOperations {
  readonly calls: RecordedOperation[] = [];
  readonly knownLeadId?: string;
  private readonly endpoints: ReadonlySet<EndpointName>;

  constructor(private readonly opts: RecordingFlowOperationsOptions = {}) {
    this.knownLeadId = opts.knownLeadId;
    this.endpoints = new Set(opts.endpoints ?? ['fetch', 'create', 'update', 'upsert']);
  }

  has(endpoint: EndpointName): boolean {
    const result = this.endpoints.has(endpoint);
    this.calls.push({ op: 'has', arg: endpoint, result });
    return result;
  }

  find(): Promise<string | undefined> {
    return this.perform('find', undefined, () => {
      if (this.opts.findError) throw this.opts.findError;
      return this.opts.found;
    });
  }

  create(): Promise<FlowOutcome> {
    return this.write('create', undefined, { action: 'created', leadId: RECORDED_IDS.created });
  }

  update(leadId: string): Promise<FlowOutcome> {
    return this.write('update', leadId, { action: 'updated', leadId });
  }

  upsert(): Promise<FlowOutcome> {
    return this.write('upsert', undefined, { action: 'upserted', leadId: this.knownLeadId ?? RECORDED_IDS.upserted });
  }

  /** Ends the sync without a write, as the engine does: the outcome is recorded with the reason. */
  skip(reason: string): FlowOutcome {
    const outcome: FlowOutcome = { action: 'skipped', reason };
    this.calls.push({ op: 'skip', arg: reason, result: outcome });
    return outcome;
  }

  /** The non-has() operations, in order: what the flow actually asked the engine to do. */
  get performed(): RecordedOperation[] {
    return this.calls.filter((c) => c.op !== 'has');
  }

  private write(op: 'create' | 'update' | 'upsert', arg: string | undefined, outcome: FlowOutcome): Promise<FlowOutcome> {
    return this.perform(op, arg, () => {
      if (this.opts.writeError) throw this.opts.writeError;
      return outcome;
    });
  }

  private async perform<T>(op: Exclude<FlowOperationName, 'has' | 'skip'>, arg: string | undefined, run: () => T): Promise<T> {
    const call: RecordedOperation = { op, arg };
    this.calls.push(call);
    try {
      if (!this.endpoints.has(ENDPOINT_OF[op])) {
        throw new PermanentError('ERR_MAPPING_INVALID', `the flow called ${ENDPOINT_OF[op]}, which the mapping does not declare`);
      }
      call.result = run();
      return call.result as T;
    } catch (err) {
      call.error = err;
      throw err;
    }
  }
}
