/** Body encodings the contract names: JSON, and form with nested keys (`custom_fields[crm_x]=v`, arrays as `a[0]=v`). */

function flatten(prefix: string, value: unknown, out: URLSearchParams): void {
  if (value === undefined) return;
  if (value === null) { out.append(prefix, ''); return; }
  if (Array.isArray(value)) { value.forEach((v, i) => flatten(`${prefix}[${i}]`, v, out)); return; }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) flatten(prefix ? `${prefix}[${k}]` : k, v, out);
    return;
  }
  out.append(prefix, String(value));
}

export function encodeForm(data: unknown): string {
  const out = new URLSearchParams();
  if (data && typeof data === 'object' && !Array.isArray(data)) flatten('', data, out);
  else if (data !== undefined) throw new TypeError('a form body must be an object');
  return out.toString();
}

/** Parses `a[b][c]=v&l[0]=x` back into nested objects (arrays stay objects keyed by index). */
export function decodeForm(text: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const parts = key.split(/\[|\]\[|\]$/).filter((p, i) => i === 0 || p !== '');
    let node = root;
    parts.forEach((p, i) => {
      if (i === parts.length - 1) node[p] = value;
      else {
        if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
        node = node[p] as Record<string, unknown>;
      }
    });
  }
  return root;
}

/** Reads a response body as data for the response readers: JSON when it is JSON, form when form, else text. */
export function parseResponseBody(raw: string, contentType: string | undefined): unknown {
  if (raw === '') return undefined;
  const ct = (contentType ?? '').toLowerCase();
  if (ct.includes('application/x-www-form-urlencoded')) return decodeForm(raw);
  if (ct.includes('json') || /^\s*[[{"]/.test(raw)) {
    try { return JSON.parse(raw); } catch { return raw; }
  }
  return raw;
}
