/**
 * Fields that were in the last synced payload and are gone now: a removal the CRM must hear about. JSONata drops
 * missing values from objects, so without this a removed attribute would silently stay in the CRM.
 */
export function applyClearedFields(payload: unknown, previous: unknown, policy: 'null' | 'empty-string' | 'omit'): unknown {
  if (policy === 'omit' || !isObject(payload) || !isObject(previous)) return payload;
  // Copied on the first change only: most syncs clear nothing, and this runs on every update.
  let out: Record<string, unknown> | undefined;
  const set = (k: string, v: unknown) => { setOwn((out ??= { ...payload }), k, v); };
  for (const k in previous) {
    if (!Object.hasOwn(previous, k)) continue;
    const prev = previous[k];
    const now = Object.hasOwn(payload, k) ? payload[k] : undefined; // own: `payload.__proto__` is the prototype
    if (now === undefined || now === null) {
      if (prev !== undefined && prev !== null && prev !== '') set(k, isObject(prev) ? clearAll(prev, policy) : policy === 'null' ? null : '');
    } else if (isObject(now) && isObject(prev)) {
      const cleared = applyClearedFields(now, prev, policy);
      if (cleared !== now) set(k, cleared);
    }
  }
  return out ?? payload;
}

/**
 * Two payloads joined, for applyClearedFields: every field of either (objects joined field by field, `b`'s value
 * where both have a leaf). The runner joins the last confirmed payload with those of writes whose outcome is unknown
 * (they may have landed), so a field any of them set, and the contact no longer has, is cleared.
 */
export function unionPayloads(a: unknown, b: unknown): unknown {
  if (a === undefined || a === null) return b;
  if (b === undefined || b === null) return a;
  if (!isObject(a) || !isObject(b)) return b;
  const out: Record<string, unknown> = { ...a };
  for (const k of Object.keys(b)) setOwn(out, k, Object.hasOwn(a, k) ? unionPayloads(a[k], b[k]) : b[k]);
  return out;
}

/**
 * `o[k] = v` as an own field even for the key `__proto__`, which a payload can hold (JSONata's object constructor and
 * $merge make it an own key) and which plain assignment would turn into a change of `o`'s prototype, losing the field.
 */
export function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

function clearAll(prev: Record<string, unknown>, policy: 'null' | 'empty-string'): Record<string, unknown> {
  return Object.fromEntries(Object.entries(prev).map(([k, v]) => [k, isObject(v) ? clearAll(v, policy) : policy === 'null' ? null : '']));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
