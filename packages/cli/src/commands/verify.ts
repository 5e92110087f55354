import { GotHttpClient, NetworkPolicyError } from '@crm-sync/core';
import { baseUrlOption, listOption, onePositional } from '../args';
import { EXIT, UsageError, type Command } from '../command';

/** A tenant name as the runner's config takes it. */
const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
import { compileMappingFile, loadPluginModules, PLUGIN_HELP, PLUGIN_OPTION } from '../mapping-file';
import { decideTarget, formatVerifyReport, verifyMapping } from '../verify';

export const verify: Command = {
  name: 'verify',
  summary: 'Check an integration end to end against a live CRM with a marked test contact.',
  help: `Usage: crm-sync verify <mapping> [--base-url <url>] [--yes] [options]

Runs the mapping against the CRM with a clearly marked test contact (name "crm-sync verify
<time>", email crm-sync-verify+<random>@example.com, a fictional +1 202 555 01xx phone,
attribute crm_sync_test: true), through the same engine the runner uses:
  1 create (or upsert, per the mapping's flow)
  2 fetch by phone      (skipped without a fetch endpoint)
  3 fetch by email      (skipped without a fetch endpoint)
  4 update (a new name)
  5 fetch again         (skipped without a fetch endpoint)
  6 read back           (what reconcile reads; skipped without a fetch or its leadFields)
Each step checks that the mapping's readers find what they should: the lead id after create,
the same lead id on every fetch, no failure on update, and the lead read back as it was sent. Prints a table of every request and
answer (secrets masked); each failure names the step, the reader and what the CRM answered.
The test lead stays in the CRM: crm-sync has no delete endpoint.

The auth secret is read from the mapping's reference (env:NAME or file:PATH).

Arguments:
  <mapping>               The mapping file (YAML or JSON).

Options:
  --base-url <url>        Use this base URL instead of the mapping's baseUrl.
  --tenant <name>         The test contact's tenant, for a mapping whose URLs or payload use
                          {{tenant}} / tenant. Default: crm-sync-verify.
  --yes                   Write the test lead to a CRM that is not on a loopback address.
                          Default: refuse (exit 2) unless the base URL is 127.0.0.0/8, ::1 or
                          localhost.
  --allow-host <host>     Allow plain http and private addresses for this host; repeatable.
                          Default: none (plus a loopback base URL's host).
${PLUGIN_HELP}
  -h, --help              Show this help.

Exit status: 0 every step passed, 1 a step failed (or the mapping or its secret is bad),
2 usage error or refused target.`,
  options: { 'base-url': { type: 'string' }, tenant: { type: 'string' }, yes: { type: 'boolean' }, 'allow-host': { type: 'string', multiple: true }, ...PLUGIN_OPTION },
  async run({ values, positionals }, io) {
    const file = onePositional(positionals, '<mapping>');
    const baseUrlFlag = baseUrlOption(values);
    loadPluginModules(listOption(values, 'plugin'));
    const mapping = compileMappingFile(file);

    const baseUrl = baseUrlFlag ?? new URL(mapping.definition.baseUrl);
    const target = decideTarget(baseUrl, { yes: values.yes === true, allowHosts: listOption(values, 'allow-host') });
    if (target.refusal) {
      io.err(`crm-sync verify: ${target.refusal}`);
      return EXIT.usage;
    }
    const http = new GotHttpClient({ allowHosts: target.allowHosts });
    try {
      // Refused before the first step, where it is one clear line rather than five failed steps.
      http.checkUrl(baseUrl);
    } catch (err) {
      if (!(err instanceof NetworkPolicyError)) throw err;
      http.close();
      io.err(`crm-sync verify: ${err.message} (allow it with --allow-host ${baseUrl.hostname})`);
      return EXIT.usage;
    }
    try {
      const tenant = values.tenant as string | undefined;
      if (tenant !== undefined && !TENANT_NAME.test(tenant)) throw new UsageError('--tenant: a tenant name as the config takes it (letters, digits, ".", "_", "-"; 64 at most)');
      const report = await verifyMapping(mapping, { http, baseUrl: baseUrlFlag?.href.replace(/\/$/, ''), tenant });
      io.out(formatVerifyReport(report));
      return report.ok ? EXIT.ok : EXIT.failure;
    } finally {
      http.close();
    }
  },
};
