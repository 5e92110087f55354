import type { EndpointName } from '../adapters';

/** The shape of a mapping file, as `schema/mapping.schema.json` publishes it. */
export interface MappingDefinition {
  $schema?: string;
  name: string;
  description?: string;
  baseUrl: string;
  auth: { adapter: string; secret?: string; [option: string]: unknown };
  /** More secret references by name (env:NAME, file:PATH), for templates and bodies as `secrets.<name>`. */
  secrets?: Record<string, string>;
  flow?: string;
  encoding?: Encoding;
  timeoutMs?: number;
  maxResponseBytes?: number;
  payload: string;
  /** JSONata over {contact, leadId, tenant}: values the requests may use (`vars.x`) that are not sent as the payload. */
  vars?: string;
  /** Query parameters and headers of every endpoint (an endpoint's own of the same name win). */
  query?: Record<string, string>;
  headers?: Record<string, string>;
  match?: MatchKey[];
  clearedFields?: 'null' | 'empty-string' | 'omit';
  rateLimit?: { requestsPerSecond?: number; remaining?: string; resetMs?: string };
  searchLagMs?: number;
  endpoints: Partial<Record<EndpointName, EndpointDefinition>>;
  responses?: ReaderDefinitions;
  examples?: MappingExample[];
}

export type Encoding = 'json' | 'form';
export type MatchKey = 'leadId' | 'email' | 'phone';

export interface EndpointDefinition {
  method: string;
  url: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | null;
  encoding?: Encoding;
  responses?: ReaderDefinitions;
}

export type ReaderName = 'leadId' | 'notFound' | 'failed' | 'retryable' | 'reason' | 'conflictLeadId' | 'stale' | 'leadFields' | 'credentialRejected' | 'rateLimited';
export type ReaderDefinitions = Partial<Record<ReaderName, string>>;

export interface CannedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface MappingExample {
  name?: string;
  contact: Record<string, unknown>;
  leadId?: string;
  previousPayload?: Record<string, unknown>;
  responses?: Partial<Record<EndpointName, CannedResponse | CannedResponse[]>>;
  expect: Array<{ method: string; url: string; headers?: Record<string, string>; body?: unknown }>;
  result?: { action?: string; leadId?: string; reason?: string; errorCode?: string };
}
