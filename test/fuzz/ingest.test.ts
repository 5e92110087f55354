/**
 * Ingest bodies from a hostile or broken client: JSON, NDJSON, huge, deeply nested, wrong types, invalid UTF-8.
 * Always a clear 4xx (or 202 for valid events), never a 5xx, a crash or a hang, and an event is accepted only if
 * parseContactEvent accepts it.
 */
import fc from 'fast-check';
import { parseContactEvent } from '@crm-sync/core';
import { startDaemon, type Daemon } from '@crm-sync/runner';
import { silentLogger, testEnv, type TestEnv } from '../daemon.support';
import { mutate, mutations, params } from './support';

let env: TestEnv;
let daemon: Daemon;
const MAX_BODY = 64 * 1024;
beforeAll(async () => {
  env = await testEnv();
  daemon = await startDaemon(env.config({ maxBodyBytes: MAX_BODY, clientRequestsPerSecond: 0 }, { quiet: '1h', maxWait: '2h' }), { logger: silentLogger() });
});
afterAll(async () => {
  await daemon.stop();
  await env.cleanup();
});

const VALID = { eventId: 'e1', contactId: 'c1', phone: '+919876543210', name: 'Priya', email: 'priya@example.com', tags: ['vip'], attributes: { city: 'Mumbai' } };

interface Answer { status: number; body: any }

async function post(body: Buffer | string, contentType = 'application/json', path = '/v1/events'): Promise<Answer> {
  const res = await fetch(`${daemon.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { parsed = text; }
  return { status: res.status, body: parsed };
}

/** The answer is a clear 202 / 400 / 413 with a code or the per-event report; accepted events are exactly the valid ones. */
function judge(answer: Answer, events: unknown[] | undefined): void {
  expect([202, 400, 413]).toContain(answer.status);
  if (answer.status === 413) return void expect(answer.body.error.code).toBe('ERR_BODY_TOO_LARGE');
  if (answer.body.error) {
    expect(answer.status).toBe(400);
    return void expect(answer.body.error.code).toMatch(/^ERR_[A-Z_]+$/);
  }
  // A per-event report: it must agree with parseContactEvent, event by event.
  expect(events).toBeDefined();
  const rejected = new Set((answer.body.rejected as Array<{ index: number }>).map((r) => r.index));
  events!.forEach((e, i) => {
    const verdict = parseContactEvent(e, { tenants: ['acme'], defaultTenant: 'acme' });
    expect([i, rejected.has(i)]).toEqual([i, !verdict.ok]);
  });
  expect(answer.body.accepted).toBe(events!.length - rejected.size);
  expect(answer.status).toBe(answer.body.accepted === 0 ? 400 : 202);
}

const eventLike = fc.oneof(
  mutations.map((edits) => mutate({ ...VALID, eventId: undefined }, edits)),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constant(VALID),
);

describe('POST /v1/events under fuzzing', () => {
  it('JSON: one event, an array of events, or any JSON value', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(eventLike, fc.array(eventLike, { maxLength: 8 })), async (body) => {
      const text = JSON.stringify(body);
      if (text === undefined) return;
      const events = Array.isArray(body) ? body : body !== null && typeof body === 'object' ? [body] : undefined;
      judge(await post(text), events?.length === 0 ? undefined : events);
    }), params(300));
  });

  it('NDJSON: lines of events, blank lines, broken lines', async () => {
    const line = fc.oneof(eventLike.map((e) => JSON.stringify(e) ?? 'null'), fc.constantFrom('', '  ', '{', '}', '[1,', 'null'), fc.string({ maxLength: 20 }));
    await fc.assert(fc.asyncProperty(fc.array(line, { maxLength: 8 }), async (lines) => {
      const answer = await post(lines.join('\n'), 'application/x-ndjson');
      let events: unknown[] | undefined = [];
      for (const l of lines) {
        if (l.trim() === '') continue;
        try { events.push(JSON.parse(l)); } catch { events = undefined; break; }
      }
      judge(answer, events?.length ? events : undefined);
    }), params(300));
  });

  it('raw bytes, invalid UTF-8 and odd content types', async () => {
    await fc.assert(fc.asyncProperty(
      fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 50 }).map((b) => Buffer.concat([Buffer.from(JSON.stringify(VALID).slice(0, -2)), Buffer.from(b), Buffer.from('"}')]))),
      fc.constantFrom('application/json', 'application/x-ndjson', 'text/plain', 'application/octet-stream', 'multipart/form-data; boundary=x', ''),
      async (bytes, type) => {
        const answer = await post(Buffer.from(bytes), type);
        expect([202, 400, 413]).toContain(answer.status);
        // Bytes that are not UTF-8 never become an accepted event (no U+FFFD names).
        if (answer.status === 202) expect(new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toBeDefined();
      }), params(300));
  });

  it('huge and deeply nested bodies', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 400_000 }), fc.constantFrom('[', '{"a":', '{"attributes":'), async (depth, open) => {
      const close = open === '[' ? ']' : '}';
      const answer = await post(`${open.repeat(depth)}1${close.repeat(depth)}`);
      expect([400, 413]).toContain(answer.status);
    }), params(40));
    expect((await post(JSON.stringify(Array.from({ length: 2000 }, () => VALID)))).status).toBe(413);
  });

  it('the daemon is still healthy afterwards', async () => {
    expect((await fetch(`${daemon.url}/healthz`)).status).toBe(200);
    expect((await post(JSON.stringify({ ...VALID, eventId: 'final' }))).status).toBe(202);
  });
});
