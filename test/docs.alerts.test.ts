/** docs/alerts.yaml: the example Prometheus rules name only metrics (and labels) the daemon serves. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Metrics } from '@crm-sync/runner';

interface Rule { alert: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }

test('every metric an alert rule names is served on /metrics, with the labels the rule uses', async () => {
  const doc = parse(readFileSync(join(__dirname, '..', 'docs', 'alerts.yaml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  const rules = doc.groups.flatMap((g) => g.rules);
  expect(rules.length).toBeGreaterThan(5);

  const metrics = new Metrics(() => ({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 0, leads: 0 }), { storeUp: () => true });
  const served = new Map<string, Set<string>>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const labels = new Set<string>(['le']);
    // Label names are declared even before a series exists: read them from the metric objects.
    const declared = (metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] })?.labelNames ?? [];
    for (const l of declared) labels.add(l);
    for (const suffix of m.type === ('histogram' as unknown) ? ['', '_bucket', '_sum', '_count'] : ['']) served.set(m.name + suffix, labels);
  }

  for (const rule of rules) {
    expect(rule).toMatchObject({ alert: expect.stringMatching(/^CrmSync/), expr: expect.any(String), labels: { severity: expect.stringMatching(/^(critical|warning)$/) } });
    for (const [, name, selector] of rule.expr.matchAll(/\b(crm_sync_[a-z_]+)(\{[^}]*\})?/g)) {
      expect({ rule: rule.alert, metric: name, served: served.has(name!) }).toEqual({ rule: rule.alert, metric: name, served: true });
      for (const [, label] of (selector ?? '').matchAll(/([a-z_]+)\s*(=~|!=|=)/g)) {
        expect({ rule: rule.alert, metric: name, label, known: served.get(name!)!.has(label!) }).toEqual({ rule: rule.alert, metric: name, label, known: true });
      }
    }
    for (const [, label] of rule.expr.matchAll(/by \(([^)]*)\)/g)) {
      for (const l of label!.split(',').map((x) => x.trim())) {
        const names = [...rule.expr.matchAll(/\b(crm_sync_[a-z_]+)/g)].map((x) => x[1]!);
        expect({ rule: rule.alert, label: l, known: names.some((n) => served.get(n)!.has(l)) }).toEqual({ rule: rule.alert, label: l, known: true });
      }
    }
  }
});
