import { TEST_MARK } from './test-contact';
import type { StepReport, VerifyReport } from './verifier';

const RESPONSE_CHARS = 60;

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One row per HTTP call; a step's name and result sit on its first row, a skipped step has a row of its own. */
function rows(step: StepReport): string[][] {
  const result = `${step.outcome.toUpperCase()} ${step.result}`;
  if (step.exchanges.length === 0) return [[String(step.number), step.name, '-', '-', result, '']];
  return step.exchanges.map((x, i) => [
    i === 0 ? String(step.number) : '',
    i === 0 ? step.name : '',
    `${x.method} ${x.url}`,
    x.status === undefined ? 'none' : String(x.status),
    i === 0 ? result : '',
    cut(x.error ?? x.responseBody ?? '', RESPONSE_CHARS),
  ]);
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(header), ...body.map(line)].join('\n');
}

/** The pass/fail table, then each failure in full and what was left in the CRM. Secrets are already masked. */
export function formatVerifyReport(report: VerifyReport): string {
  const c = report.contact;
  const failed = report.steps.filter((s) => s.outcome === 'fail');
  const skipped = report.steps.filter((s) => s.outcome === 'skip').length;
  const out = [
    `crm-sync verify: mapping ${report.mapping} at ${report.baseUrl}`,
    `test contact: "${c.name}" ${c.email} ${c.phone} (${TEST_MARK}: true)`,
    '',
    table(['#', 'step', 'request', 'status', 'result', 'response'], report.steps.flatMap(rows)),
    '',
  ];
  if (failed.length > 0) {
    out.push(`FAILED: ${failed.length} of ${report.steps.length} steps`, ...failed.map((s) => s.failure ?? `step ${s.number} (${s.name}) failed`));
  } else {
    out.push(`PASSED: ${report.steps.length - skipped} steps${skipped ? `, ${skipped} skipped` : ''}`);
  }
  if (report.leadId !== undefined) out.push(`The test lead ${report.leadId} stays in the CRM (find it by ${TEST_MARK}: true); delete it there when done.`);
  return out.join('\n');
}
