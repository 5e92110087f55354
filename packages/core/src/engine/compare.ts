/** One field of the payload last synced that the CRM does not hold alike. */
export interface FieldDifference {
  /** Where, as a JSONata path into the payload (`custom_fields.city`; a name that is not a plain identifier in backticks). */
  path: string;
  /** What was last sent. */
  sent: unknown;
  /** What the CRM holds there; undefined: the CRM's answer has nothing there. */
  crm: unknown;
}

/**
 * The fields of `sent` (the payload last synced) that `crm` (the lead as the CRM holds it, read back into the payload's
 * shape by the fetch's `leadFields` reader) does not hold alike, walking `sent`'s objects down to their values:
 *
 * - only what was sent is compared: fields the CRM has besides are not differences;
 * - a field sent with a value and absent from the CRM's answer is a difference (a CRM that dropped it looks the same);
 * - empty is empty: a field sent cleared (`null`, `""`) matches one the CRM holds as `null`, `""` or not at all;
 * - values compare as text, so `1` matches `"1"` and `true` matches `"true"` (CRMs often store numbers as strings);
 * - arrays compare element by element, in order; an object sent empty (`{}`) has nothing to compare.
 */
export function leadDifferences(sent: unknown, crm: unknown): FieldDifference[] {
  const out: FieldDifference[] = [];
  walk(sent, crm, '', out);
  return out;
}

function walk(sent: unknown, crm: unknown, path: string, out: FieldDifference[]): void {
  if (isObject(sent)) {
    const held = isObject(crm) ? crm : undefined;
    for (const key of Object.keys(sent)) walk(sent[key], held?.[key], join(path, key), out);
    return;
  }
  if (!same(sent, crm)) out.push({ path: path || '$', sent, crm });
}

function same(a: unknown, b: unknown): boolean {
  if (isEmpty(a) || isEmpty(b)) return isEmpty(a) && isEmpty(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false;
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) if (!same(a[k], b[k])) return false;
    return true;
  }
  return String(a) === String(b);
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === '';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, key: string): string {
  const name = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : `\`${key}\``;
  return path ? `${path}.${name}` : name;
}
