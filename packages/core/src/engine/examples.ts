import { isDeepStrictEqual } from 'node:util';
import type { EndpointName } from '../adapters';
import { toContact } from '../contact';
import { SyncError } from '../errors';
import { decodeForm } from '../http/encode';
import type { HttpClient, HttpRequest, HttpResponse } from '../http/client';
import type { CompiledMapping } from '../mapping/compile';
import type { CannedResponse, MappingExample } from '../mapping/types';
import { maskSecrets } from '../secrets';
import { SyncEngine, type SyncOptions, type SyncResult } from './engine';

/** Stands in for every secret offline (examples, preview): never a real secret, masked like one. */
export const PLACEHOLDER_SECRET = 'crm-sync-placeholder-secret';

/** The contract's answers, used where an example gives none. */
const CONTRACT_ANSWERS: Record<EndpointName, CannedResponse> = {
  fetch: { status: 404, body: { status: 'Not Found', reason: 'No matching lead' } },
  create: { status: 200, body: { lead_id: 'example-lead-1', status: 'Successfully Created' } },
  update: { status: 200, body: { status: 'Successfully Updated' } },
  upsert: { status: 200, body: { lead_id: 'example-lead-1', status: 'Successfully Created' } },
};

export interface RecordedRequest {
  step: EndpointName;
  method: string;
  /** Secrets masked. */
  url: string;
  headers: Record<string, string>;
  /** The encoded body, secrets masked. */
  body?: string;
}

/** An HTTP client that sends nothing: it records each request (masked) and answers from canned responses. */
export class CannedHttpClient implements HttpClient {
  readonly requests: RecordedRequest[] = [];
  private readonly queues: Partial<Record<EndpointName, CannedResponse[]>> = {};

  private readonly secrets: string[];

  constructor(responses: MappingExample['responses'] = {}, secrets: readonly string[] = [PLACEHOLDER_SECRET]) {
    this.secrets = [...secrets];
    for (const [step, r] of Object.entries(responses ?? {})) this.queues[step as EndpointName] = Array.isArray(r) ? [...r] : [r!];
  }

  /** Masks this value too in the requests recorded from now on (what the engine learns is secret, e.g. derived). */
  maskAlso(value: string): void {
    if (value && !this.secrets.includes(value)) this.secrets.push(value);
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    const step = req.step as EndpointName;
    const mask = (s: string) => maskSecrets(s, this.secrets);
    this.requests.push({
      step, method: req.method, url: mask(req.url),
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, mask(v)])),
      body: req.body === undefined ? undefined : mask(req.body),
    });
    const queue = this.queues[step];
    // The last canned answer repeats once the list runs out.
    const answer = (queue && queue.length > 1 ? queue.shift() : queue?.[0]) ?? CONTRACT_ANSWERS[step];
    const headers = Object.fromEntries(Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const body = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    if (body && !headers['content-type']) headers['content-type'] = typeof answer.body === 'string' ? 'text/plain' : 'application/json';
    return { status: answer.status, headers, body, durationMs: 0 };
  }
}

/** Runs a sync offline: every request recorded, nothing sent. The basis of `preview` and of golden examples. */
export async function dryRun(mapping: CompiledMapping, contactEvent: unknown, opts: SyncOptions & { responses?: MappingExample['responses'] } = {}):
  Promise<{ requests: RecordedRequest[]; result?: SyncResult; error?: SyncError }> {
  const http = new CannedHttpClient(opts.responses);
  // Offline: an OAuth-style auth adapter sends the placeholder as its credential, no token request is made.
  const engine = new SyncEngine({ http, secrets: () => PLACEHOLDER_SECRET, exchangeCredentials: false, onSecret: (v) => http.maskAlso(v) });
  const contact = toContact(contactEvent, { defaultTenant: 'example' });
  try {
    return { requests: http.requests, result: await engine.sync(mapping, contact, opts) };
  } catch (err) {
    if (err instanceof SyncError) return { requests: http.requests, error: err };
    throw err;
  }
}

function bodyAsData(r: RecordedRequest): unknown {
  if (r.body === undefined) return undefined;
  const ct = Object.entries(r.headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '';
  if (ct.includes('x-www-form-urlencoded')) return decodeForm(r.body);
  try { return JSON.parse(r.body); } catch { return r.body; }
}

/** The request's URL as an example writes it: relative to the mapping's base URL when it is under it. */
export function relativeUrl(url: string, baseUrl: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  return url.startsWith(base + '/') || url.startsWith(base + '?') ? url.slice(base.length) : url;
}

export interface ExampleFailure {
  example: string;
  problems: string[];
}

/** Checks a mapping's golden examples: for each, the exact requests out and the outcome. Empty when all pass. */
export async function checkExamples(mapping: CompiledMapping): Promise<ExampleFailure[]> {
  const failures: ExampleFailure[] = [];
  const examples = mapping.definition.examples ?? [];
  for (const [i, ex] of examples.entries()) {
    const label = `examples[${i}]${ex.name ? ` (${ex.name})` : ''}`;
    const problems: string[] = [];
    let run: Awaited<ReturnType<typeof dryRun>>;
    try {
      run = await dryRun(mapping, ex.contact, { knownLeadId: ex.leadId, previousPayload: ex.previousPayload, responses: ex.responses });
    } catch (err) {
      failures.push({ example: label, problems: [`could not run: ${(err as Error).message}`] });
      continue;
    }
    const { requests, result, error } = run;
    if (requests.length !== ex.expect.length) {
      problems.push(`expected ${ex.expect.length} request(s), the engine sent ${requests.length}: ${requests.map((r) => `${r.method} ${relativeUrl(r.url, mapping.definition.baseUrl)}`).join(', ') || 'none'}`);
    }
    ex.expect.forEach((want, j) => {
      const got = requests[j];
      if (!got) return;
      const at = `request ${j + 1}`;
      const url = relativeUrl(got.url, mapping.definition.baseUrl);
      if (got.method !== want.method || url !== want.url) problems.push(`${at}: expected ${want.method} ${want.url}, got ${got.method} ${url}`);
      for (const [h, v] of Object.entries(want.headers ?? {})) {
        const actual = Object.entries(got.headers).find(([k]) => k.toLowerCase() === h.toLowerCase())?.[1];
        if (actual !== v) problems.push(`${at}: expected header ${h}: ${v}, got ${actual === undefined ? 'none' : actual}`);
      }
      if ('body' in want && !isDeepStrictEqual(bodyAsData(got), want.body)) {
        problems.push(`${at}: body differs\n      expected ${JSON.stringify(want.body)}\n      got      ${JSON.stringify(bodyAsData(got))}`);
      }
    });
    const r = ex.result;
    if (r?.errorCode) {
      if (error?.code !== r.errorCode) problems.push(`expected error ${r.errorCode}, got ${error ? error.code : `success (${result?.action})`}`);
    } else if (error) {
      problems.push(`the sync failed: ${error.describe()}`);
    } else {
      if (r?.action && result?.action !== r.action) problems.push(`expected action ${r.action}, got ${result?.action}`);
      if (r?.leadId && result?.leadId !== r.leadId) problems.push(`expected lead id ${r.leadId}, got ${result?.leadId}`);
      if (r?.reason && !(result?.reason ?? '').includes(r.reason)) problems.push(`expected a skip saying ${JSON.stringify(r.reason)}, got ${result?.reason === undefined ? 'no reason' : JSON.stringify(result.reason)}`);
    }
    if (problems.length) failures.push({ example: label, problems });
  }
  return failures;
}

/** A request as a curl command a person can read and paste (secrets already masked as ***). */
export function toCurl(r: RecordedRequest): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const parts = [`curl -X ${r.method} ${q(r.url)}`];
  for (const [k, v] of Object.entries(r.headers)) parts.push(`-H ${q(`${k}: ${v}`)}`);
  if (r.body !== undefined) parts.push(`--data-raw ${q(r.body)}`);
  return parts.join(' \\\n  ');
}

