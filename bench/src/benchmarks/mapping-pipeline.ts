/**
 * mapping-pipeline: what the engine costs on top of JSONata. A bare `jsonata(expr).evaluate` of a 10-field payload is
 * the floor; the engine's request pipeline (payload + cleared fields + URL template + query/headers + auth + encoding,
 * everything before the network) is timed on the same expression, in the same run, through a no-op HTTP client.
 */
import jsonata from 'jsonata';
import { registerBuiltinAdapters } from '@crm-sync/runner';
import { compileMapping, SyncEngine, toContact, type HttpClient, type HttpRequest, type HttpResponse, type MappingDefinition } from '@crm-sync/core';
import type { Benchmark, Figure } from '../figure';
import { interleave, medianRatio, opsPerSecond, timed, type TimedOp } from '../measure';

export const PAYLOAD = `{
  "phone": contact.phone,
  "name": contact.name,
  "email": contact.email,
  "first_name": $substringBefore(contact.name, " "),
  "tags": $join(contact.tags, ","),
  "custom_fields": {
    "crm_campaign_code": contact.attributes.utm_campaign,
    "city": contact.attributes.city,
    "source": contact.attributes.source,
    "plan": contact.attributes.plan,
    "score": contact.attributes.score
  }
}`;

const DEFINITION: MappingDefinition = {
  name: 'bench-ten-fields',
  baseUrl: 'https://crm.example.com',
  auth: { adapter: 'auth-key', header: 'Auth-Key', secret: 'env:BENCH_CRM_KEY' },
  flow: 'fetch-create-update',
  encoding: 'json',
  payload: PAYLOAD,
  endpoints: {
    fetch: { method: 'GET', url: '/crm/fetch', query: { phone: '{{contact.phone}}', email: '{{contact.email}}' } },
    create: { method: 'POST', url: '/crm/create' },
    update: { method: 'POST', url: '/crm/update/{{leadId}}' },
  },
};

const CONTACT = toContact({
  contactId: 'c_0042', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya.sharma@example.com', tags: ['whatsapp', 'vip'],
  attributes: { utm_campaign: 'diwali_2024', city: 'Mumbai', source: 'instagram', plan: 'gold', score: 42, unused_a: 'x', unused_b: 'y' },
}, { defaultTenant: 'acme' });

const ANSWER: HttpResponse = {
  status: 200, headers: { 'content-type': 'application/json' }, body: '{"lead_id":"L000001","status":"Successfully Updated"}', durationMs: 0,
};

/** Answers every request at once and notes when the engine handed it over: the end of the request pipeline. */
class NoOpHttpClient implements HttpClient {
  sentAt = 0;
  lastRequest?: HttpRequest;
  async send(request: HttpRequest): Promise<HttpResponse> {
    this.sentAt = performance.now();
    this.lastRequest = request;
    return ANSWER;
  }
}

export const mappingPipeline: Benchmark = {
  name: 'mapping-pipeline',
  description: 'A 10-field payload: bare JSONata vs the engine\'s whole request pipeline (one update request, JSON, Auth-Key), measured in one run.',
  async run(): Promise<Figure[]> {
    registerBuiltinAdapters();
    const mapping = compileMapping(JSON.stringify(DEFINITION), { file: 'bench-ten-fields.json' });
    const http = new NoOpHttpClient();
    const engine = new SyncEngine({ http, secrets: () => 'bench-secret-key' });
    const input = { contact: CONTACT, leadId: 'L000001', tenant: CONTACT.tenant };
    const bare = jsonata(PAYLOAD);
    const syncOptions = { knownLeadId: 'L000001', previousPayload: await bare.evaluate(input) };

    const bareOp: TimedOp = timed(() => bare.evaluate(input));
    const renderOp: TimedOp = timed(() => engine.renderPayload(mapping, CONTACT, 'L000001'));
    // From the call to sync() until the request reaches the (no-op) network: mapping, URL, auth, encoding.
    const pipelineOp: TimedOp = async () => {
      const started = performance.now();
      await engine.sync(mapping, CONTACT, syncOptions);
      return http.sentAt - started;
    };
    const fullSyncOp: TimedOp = timed(() => engine.sync(mapping, CONTACT, syncOptions));

    const { msPerOp: [bareMs, renderMs, pipelineMs, fullMs] } = await interleave([bareOp, renderOp, pipelineOp, fullSyncOp],
      { rounds: 300, batch: 100, warmup: 3000 });
    if (!http.lastRequest?.body?.includes('"crm_campaign_code":"diwali_2024"')) throw new Error('the pipeline did not build the expected request');
    const ratio = Math.round(medianRatio(pipelineMs!, bareMs!) * 100) / 100;
    return [
      { name: 'bare jsonata evaluate (10 fields)', value: opsPerSecond(bareMs!), unit: 'ops/s' },
      { name: 'payloads rendered (engine.renderPayload: evaluate + hash)', value: opsPerSecond(renderMs!), unit: 'payloads/s' },
      { name: 'request pipeline (mapping + cleared fields + URL + auth + encoding)', value: opsPerSecond(pipelineMs!), unit: 'requests/s' },
      { name: 'whole sync with an instant CRM', value: opsPerSecond(fullMs!), unit: 'syncs/s', note: 'pipeline + reading the answer: failed, stale and leadId readers' },
      { name: 'request pipeline ÷ bare jsonata evaluate', value: ratio, unit: '×', target: '≤ 1.3×', met: ratio <= 1.3 },
    ];
  },
};
