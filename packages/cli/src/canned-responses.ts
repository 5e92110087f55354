import { ConfigError, type EndpointName, type FieldError, type MappingExample } from '@crm-sync/core';

type CannedResponses = NonNullable<MappingExample['responses']>;

const ENDPOINTS: readonly EndpointName[] = ['fetch', 'create', 'update', 'upsert'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkResponse(v: unknown, at: string, errors: FieldError[]): void {
  if (!isObject(v)) return void errors.push({ field: at, message: 'must be an object {status, headers?, body?}' });
  for (const key of Object.keys(v)) if (!['status', 'headers', 'body'].includes(key)) errors.push({ field: `${at}.${key}`, message: 'is not a known field' });
  if (!Number.isInteger(v.status) || (v.status as number) < 100 || (v.status as number) > 599) {
    errors.push({ field: `${at}.status`, message: 'must be an HTTP status 100..599' });
  }
  if (v.headers !== undefined && (!isObject(v.headers) || Object.values(v.headers).some((h) => typeof h !== 'string'))) {
    errors.push({ field: `${at}.headers`, message: 'must be an object of strings' });
  }
}

/**
 * Checks `--responses` data: the CRM's canned answers per endpoint, shaped as a mapping example's `responses`
 * (`{"fetch": {"status": 200, "body": {...}}, "update": [{...}, {...}]}`; a list answers successive calls).
 */
export function toCannedResponses(data: unknown, source: string): CannedResponses {
  const errors: FieldError[] = [];
  if (!isObject(data)) {
    errors.push({ field: '(root)', message: `must be an object keyed by endpoint (${ENDPOINTS.join(', ')})` });
  } else {
    for (const [step, answer] of Object.entries(data)) {
      if (!(ENDPOINTS as readonly string[]).includes(step)) errors.push({ field: step, message: `is not an endpoint (expected one of ${ENDPOINTS.join(', ')})` });
      else if (Array.isArray(answer)) {
        if (answer.length === 0) errors.push({ field: step, message: 'must not be an empty list' });
        answer.forEach((a, i) => checkResponse(a, `${step}[${i}]`, errors));
      } else checkResponse(answer, step, errors);
    }
  }
  if (errors.length > 0) throw new ConfigError(`${source}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`, 'ERR_RESPONSES_INVALID');
  return data as CannedResponses;
}
