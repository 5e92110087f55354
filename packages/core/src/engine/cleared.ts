/**
 * Fields that were in the last synced payload and are gone now: a removal the CRM must hear about. JSONata drops
 * missing values from objects, so without this a removed attribute would silently stay in the CRM.
 */
export function applyClearedFields(payload: unknown, previous: unknown, policy: 'null' | 'empty-string' | 'omit'): unknown {
  if (policy === 'omit' || !isObject(payload) || !isObject(previous)) return payload;
  const out: Record<string, unknown> = { ...payload };
  for (const [k, prev] of Object.entries(previous)) {
    const now = out[k];
    if (now === undefined || now === null) {
      if (prev !== undefined && prev !== null && prev !== '') out[k] = isObject(prev) ? clearAll(prev, policy) : policy === 'null' ? null : '';
    } else if (isObject(now) && isObject(prev)) {
      out[k] = applyClearedFields(now, prev, policy);
    }
  }
  return out;
}

function clearAll(prev: Record<string, unknown>, policy: 'null' | 'empty-string'): Record<string, unknown> {
  return Object.fromEntries(Object.entries(prev).map(([k, v]) => [k, isObject(v) ? clearAll(v, policy) : policy === 'null' ? null : '']));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
