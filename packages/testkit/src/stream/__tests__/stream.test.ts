import { parseContactEvent } from '@crm-sync/core';
import type { Lead } from '../../reference-crm';
import { checkLeads, countKinds, planStream, sliceStream } from '../index';

const parse = (e: Record<string, unknown>) => parseContactEvent(e, { tenants: ['t'] });

describe('planStream', () => {
  const stream = planStream({ contacts: 1000, seed: 7, spanMs: 10_000, maxBursts: 4, maxChanges: 7 });

  it('is the same for the same seed, and in send order', () => {
    const again = planStream({ contacts: 1000, seed: 7, spanMs: 10_000, maxBursts: 4, maxChanges: 7 });
    expect(again.plan.map((p) => p.event.eventId)).toEqual(stream.plan.map((p) => p.event.eventId));
    expect(stream.plan.every((p, i) => i === 0 || stream.plan[i - 1]!.at <= p.at)).toBe(true);
    expect(Math.max(...stream.plan.map((p) => p.at))).toBeLessThan(11_500);
    expect(planStream({ contacts: 1000, seed: 8 }).plan[0]!.event).not.toEqual(stream.plan[0]!.event);
  });

  it('mixes bursts, redeliveries, out-of-order and about 3 % bad events; exactly the bad ones fail validation', () => {
    const kinds = countKinds(stream.plan);
    expect(stream.plan.length).toBeGreaterThanOrEqual(10_000);
    expect(kinds.bad / kinds.change).toBeGreaterThan(0.02);
    expect(kinds.bad / kinds.change).toBeLessThan(0.04);
    expect(kinds.redelivery).toBeGreaterThan(0);
    expect(kinds['out-of-order']).toBeGreaterThan(0);
    for (const p of stream.plan) expect({ kind: p.kind, ok: parse(p.event).ok }).toEqual({ kind: p.kind, ok: p.kind !== 'bad' });
  });

  it('expects each contact\'s newest change, whatever order its events arrive in', () => {
    const newest = new Map<string, Record<string, unknown>>();
    for (const p of stream.plan) {
      if (p.kind === 'bad') continue;
      const seen = newest.get(p.event.contactId as string);
      if (!seen || (seen.ts as string) < (p.event.ts as string)) newest.set(p.event.contactId as string, p.event);
    }
    expect(newest.size).toBe(1000);
    for (const [id, e] of newest) {
      const want = stream.expected.get(id)!;
      const parsed = parse(e);
      expect(parsed.ok && { phone: parsed.contact.phone, name: e.name, email: e.email, attributes: e.attributes })
        .toEqual({ phone: want.phone, name: want.name, email: want.email, attributes: want.attributes });
    }
  });

  it('refuses more contacts than it has distinct phones for', () => {
    expect(() => planStream({ contacts: 100_001, seed: 1 })).toThrow('contacts must be a whole number 1..100000, got 100001');
  });
});

test('sliceStream cuts by `at`, keeping empty slices', () => {
  const { plan } = planStream({ contacts: 3, seed: 1, spanMs: 1000 });
  const slices = sliceStream(plan, 100);
  expect(slices.flat()).toEqual(plan);
  slices.forEach((s, i) => s.forEach((p) => expect(Math.floor(p.at / 100)).toBe(i)));
});

test('checkLeads counts duplicates, missing, mismatched and unexpected leads', () => {
  const { expected } = planStream({ contacts: 2, seed: 1 });
  const [a, b] = [...expected.values()];
  const lead = (c: typeof a, over: Partial<Lead> = {}): Lead => ({
    lead_id: `L-${c!.contactId}`, phone: c!.phone, name: c!.name, email: c!.email, custom_fields: c!.attributes,
    created_at: '', updated_at: '', version: 1, ...over,
  });
  expect(checkLeads([lead(a), lead(b)], expected)).toEqual({ duplicates: 0, missing: 0, mismatched: 0, unexpected: 0, problems: [] });
  expect(checkLeads([lead(a), lead(b), lead(b, { lead_id: 'dup' })], expected)).toMatchObject({ duplicates: 1, problems: [`${b!.contactId}: 2 leads for ${b!.phone}, expected 1`] });
  expect(checkLeads([lead(a)], expected)).toMatchObject({ missing: 1 });
  expect(checkLeads([lead(a), lead(b, { custom_fields: { ...b!.attributes, stage: 'stale' } })], expected)).toMatchObject({ mismatched: 1 });
  expect(checkLeads([lead(a), lead(b), lead(b, { phone: '+15550000000' })], expected)).toMatchObject({ unexpected: 1, problems: ['1 lead(s) for +15550000000, which no contact has'] });
});
