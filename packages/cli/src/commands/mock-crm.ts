import { randomBytes } from 'node:crypto';
import { startReferenceCrm, type ReferenceCrmAuth } from '@crm-sync/testkit';
import { portOption, stringOption, type Values } from '../args';
import { EXIT, UsageError, type Command } from '../command';
import { untilShutdown } from '../shutdown';

const AUTH_STYLES = ['auth-key', 'basic', 'bearer', 'body-secret', 'hmac', 'none'] as const;
type AuthStyle = (typeof AUTH_STYLES)[number];
const DEFAULT_PORT = 4010;

function authFrom(values: Values): { auth: ReferenceCrmAuth; generated: boolean } {
  const style = (stringOption(values, 'auth') ?? 'auth-key') as AuthStyle;
  if (!AUTH_STYLES.includes(style)) throw new UsageError(`--auth must be one of ${AUTH_STYLES.join(', ')}, got ${JSON.stringify(style)}`);
  const key = stringOption(values, 'key');
  const header = stringOption(values, 'header');
  const field = stringOption(values, 'field');
  if (header !== undefined && style !== 'auth-key' && style !== 'hmac') throw new UsageError('--header applies to --auth auth-key and hmac only');
  if (field !== undefined && style !== 'body-secret') throw new UsageError('--field applies to --auth body-secret only');
  const user = stringOption(values, 'user');
  if (user !== undefined && style !== 'basic') throw new UsageError('--user applies to --auth basic only');
  if (user !== undefined && (user === '' || user.includes(':'))) throw new UsageError('--user: a user name without ":"');
  if (style === 'none') {
    if (key !== undefined) throw new UsageError('--key has no use with --auth none');
    return { auth: { style }, generated: false };
  }
  const secret = key ?? randomBytes(18).toString('base64url');
  if (style === 'hmac') return { auth: { style, key: secret, header }, generated: key === undefined };
  if (style === 'basic') return { auth: { style, key: secret, user }, generated: key === undefined };
  return { auth: { style, key: secret, header, field }, generated: key === undefined };
}

function describeAuth(auth: ReferenceCrmAuth, generated: boolean): string {
  if (auth.style === 'none') return 'none (every request is accepted)';
  const how = auth.style === 'auth-key' ? `header ${auth.header ?? 'Auth-Key'}: <key>`
    : auth.style === 'bearer' ? 'header Authorization: Bearer <key>'
      : auth.style === 'basic' ? `header Authorization: Basic base64("${auth.user ?? 'crm-sync'}:<key>")`
      : auth.style === 'hmac' ? `header ${auth.header ?? 'X-Signature'}: sha256=<hex HMAC-SHA256(key, "<X-Timestamp>.<METHOD>.<path?query>.<body>")>, X-Timestamp: <Unix seconds>`
        : `body field or query parameter ${auth.field ?? 'secret'}=<key>`;
  return `${auth.style}, ${how}\n  key:     ${auth.key}${generated ? '   (generated; pass --key to choose one)' : ''}`;
}

export const mockCrm: Command = {
  name: 'mock-crm',
  summary: 'Run the reference CRM (CONTRACT.md) locally, to try mappings and syncs by hand.',
  help: `Usage: crm-sync mock-crm [options]

Starts the reference CRM: a real HTTP server implementing CONTRACT.md (create, fetch, update,
optionally upsert), storing leads in memory, with an admin API to read its leads and request
log and to inject faults. Runs until interrupted (Ctrl-C / SIGTERM), then closes cleanly.

Options:
  --port <n>          Port to listen on; 0 picks a free one. Default: ${DEFAULT_PORT}.
  --host <h>          Address to listen on. Default: 127.0.0.1.
  --auth <style>      auth-key | basic | bearer | body-secret | hmac | none. Default: auth-key.
  --key <k>           The shared secret. Default: a random key, printed at start.
  --header <name>     auth-key: the header carrying the key (default Auth-Key); hmac: the
                      signature's header (default X-Signature).
  --field <name>      body-secret: the body field / query parameter. Default: secret.
  --user <name>       basic: the user name; the key is the password. Default: crm-sync.
  --no-fetch          Serve no fetch endpoint (CRMs without one). Default: fetch is served.
  --upsert            Also serve POST /crm/upsert. Default: off.
  --dedupe            A create whose phone or email matches a lead updates that lead.
                      Default: off (every create makes a new lead, so duplicates show).
  -h, --help          Show this help.

Admin API (no auth; the URLs are printed at start):
  GET    /_admin/leads               the stored leads
  PATCH  /_admin/leads/{id}          change its phone, name, email or custom_fields (JSON body),
  DELETE /_admin/leads/{id}            or delete it: what crm-sync reconcile finds
  GET    /_admin/requests            the request log, secrets masked
  POST   /_admin/faults              inject faults: one JSON object or a list, each
                                     {"route": "create|fetch|update|upsert|*", and one or more of
                                      "status": 503, "retryAfterSec": 30 (with 429), "latencyMs": 2000,
                                      "hang": true, "reset": true, "resetAfterCommit": true,
                                      "failInBody": true; "rate": 0.5, "times": 3}
                                     e.g. curl -X POST <url>/_admin/faults -d '{"route":"update","status":429,"retryAfterSec":5,"times":2}'
  GET|DELETE /_admin/faults          list or clear the faults
  POST   /_admin/reset               forget leads, requests and faults

Exit status: 0 stopped by a signal, 1 could not start (e.g. port in use), 2 usage error.`,
  options: {
    port: { type: 'string' }, host: { type: 'string' }, auth: { type: 'string' }, key: { type: 'string' },
    header: { type: 'string' }, field: { type: 'string' }, user: { type: 'string' },
    'no-fetch': { type: 'boolean' }, upsert: { type: 'boolean' }, dedupe: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const { auth, generated } = authFrom(values);
    const crm = await startReferenceCrm({
      host: stringOption(values, 'host') ?? '127.0.0.1',
      port: portOption(values, 'port', DEFAULT_PORT),
      auth,
      fetch: values['no-fetch'] !== true,
      upsert: values.upsert === true,
      dedupeOnCreate: values.dedupe === true,
    });
    const routes = ['POST /crm/create', ...(values['no-fetch'] ? [] : ['GET|POST /crm/fetch']), 'POST|PUT /crm/update/{lead_id}',
      ...(values.upsert ? ['POST /crm/upsert'] : [])];
    io.out([
      `Reference CRM listening on ${crm.url}`,
      `  auth:    ${describeAuth(auth, generated)}`,
      `  routes:  ${routes.join('  ·  ')}`,
      '  admin:',
      `    GET             ${crm.url}/_admin/leads      the stored leads`,
      `    PATCH|DELETE    ${crm.url}/_admin/leads/{id} change a lead's fields, or delete it, behind crm-sync's back`,
      `    GET             ${crm.url}/_admin/requests   the request log (secrets masked)`,
      `    GET|POST|DELETE ${crm.url}/_admin/faults     injected faults (POST one fault or a list; DELETE clears)`,
      `    POST            ${crm.url}/_admin/reset      forget leads, requests and faults`,
      'Stop with Ctrl-C.',
    ].join('\n'));
    const why = await untilShutdown(io.signal);
    await crm.close();
    io.out(`Reference CRM stopped (${why}).`);
    return EXIT.ok;
  },
};
