import { failureDetails, GotHttpClient, RetryableError, SyncEngine, SyncError, toContact } from '@crm-sync/core';
import { allowedHosts, listOption } from '../args';
import { EXIT, type Command } from '../command';
import { PLUGIN_HELP } from '../mapping-file';
import { readSyncInput, SYNC_INPUT_HELP, SYNC_INPUT_OPTIONS } from '../sync-input';

/** The classified error as a script reads it: code, retryable, step, status, the CRM's reason, and the calls made. */
function failureReport(err: SyncError): Record<string, unknown> {
  return {
    ...err.toJSON(),
    ...(err instanceof RetryableError && err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    ...(err.code === 'ERR_URL_FORBIDDEN' ? { hint: 'plain http and private addresses need --allow-host <host>' } : {}),
    calls: failureDetails(err)?.calls ?? [],
  };
}

export const sync: Command = {
  name: 'sync',
  summary: 'Sync one contact to the CRM now and print the result as JSON.',
  help: `Usage: crm-sync sync <mapping> --contact <file.json|-> [options]

Performs one real sync of a contact with the mapping: known lead id → update; otherwise the
mapping's flow decides (fetch → update or create, upsert, or create). The auth secret is read
from the mapping's reference (env:NAME or file:PATH). Prints {action, leadId, calls, warnings}
as JSON. A contact without "tenant" belongs to the tenant named like the mapping.

Only https to public addresses is allowed, unless the host is allowed: --allow-host, or a
loopback --base-url (127.0.0.0/8, localhost, ::1), which allows its own host.

On failure, prints the classified error as JSON to stderr: code, message, retryable, step,
method, url, status, the CRM's reason, retryAfterMs when the CRM gave one, and the calls made.

${SYNC_INPUT_HELP}
  --allow-host <host>     Allow plain http and private addresses for this host; repeatable.
                          Default: none (plus a loopback --base-url's host).
${PLUGIN_HELP}
  -h, --help              Show this help.

Exit status: 0 synced, 1 the sync failed (or the input is bad), 2 usage error.`,
  options: { ...SYNC_INPUT_OPTIONS, 'allow-host': { type: 'string', multiple: true } },
  async run(args, io) {
    const allowHost = listOption(args.values, 'allow-host');
    const { mapping, event, knownLeadId, baseUrl } = await readSyncInput(args, io);
    const allowHosts = allowedHosts(baseUrl, allowHost);
    const http = new GotHttpClient({ allowHosts });
    try {
      const contact = toContact(event, { defaultTenant: mapping.name });
      const result = await new SyncEngine({ http }).sync(mapping, contact, { knownLeadId, baseUrl: baseUrl?.href });
      const { action, leadId, calls, warnings, forgotLeadId } = result;
      io.out(JSON.stringify({ action, leadId, calls, warnings, ...(forgotLeadId === undefined ? {} : { forgotLeadId }) }, null, 2));
      return EXIT.ok;
    } catch (err) {
      if (!(err instanceof SyncError)) throw err;
      io.err(JSON.stringify(failureReport(err), null, 2));
      return EXIT.failure;
    } finally {
      http.close();
    }
  },
};
