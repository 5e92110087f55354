import { dryRun, toCurl } from '@crm-sync/core';
import { stringOption } from '../args';
import { toCannedResponses } from '../canned-responses';
import { EXIT, type Command } from '../command';
import { readJsonInput } from '../json-input';
import { PLUGIN_HELP } from '../mapping-file';
import { readSyncInput, SYNC_INPUT_HELP, SYNC_INPUT_OPTIONS } from '../sync-input';

export const preview: Command = {
  name: 'preview',
  summary: 'Print the requests a sync would send, as curl commands (secrets masked); sends nothing.',
  help: `Usage: crm-sync preview <mapping> --contact <file.json|-> [options]

Runs the sync engine offline for one contact and prints each request it would send as a curl
command, secrets shown as ***, then the outcome (action and lead id, or the error). Nothing is
sent and no secret is read. The CRM's answers are canned: those of the mapping's first example
that succeeds from the same start (with --lead-id: one with a stored lead id; without: one
without), else the contract's (fetch finds nothing, so the contact is created); --responses
gives your own. The first line says which.

${SYNC_INPUT_HELP}
  --responses <file>      Canned CRM answers per endpoint, as in a mapping example's "responses":
                          {"fetch": {"status": 200, "body": {"lead_id": "L1"}}, "update": [...]}.
                          Default: an example's (above), else fetch 404 Not Found,
                          create/upsert 200 with lead id example-lead-1, update 200.
${PLUGIN_HELP}
  -h, --help              Show this help.

Exit status: 0 the sync would succeed, 1 it would fail (or the input is bad), 2 usage error.`,
  options: { ...SYNC_INPUT_OPTIONS, responses: { type: 'string' } },
  async run(args, io) {
    const responsesFile = stringOption(args.values, 'responses');
    const { mapping, event, knownLeadId, baseUrl } = await readSyncInput(args, io);
    let responses = responsesFile === undefined ? undefined : toCannedResponses(await readJsonInput(responsesFile, 'responses', io), responsesFile);
    let answersFrom = responsesFile === undefined ? "the contract's" : responsesFile;
    if (responses === undefined) {
      // A mapping's own examples know how its CRM answers (a not-found that is not the contract's 404, say): the first
      // that succeeds from the same start (a stored lead id or not) lends its answers.
      const examples = mapping.definition.examples ?? [];
      const at = examples.findIndex((ex) => ex.result?.action !== undefined && (ex.leadId !== undefined) === (knownLeadId !== undefined));
      if (at >= 0) {
        responses = examples[at]!.responses ?? {};
        answersFrom = `examples[${at}]${examples[at]!.name ? ` (${examples[at]!.name})` : ''}`;
      }
    }

    const { requests, result, error } = await dryRun(mapping, event, { knownLeadId, baseUrl: baseUrl?.href, responses });
    io.out([`# Nothing was sent; secrets are shown as ***. The CRM's answers: ${answersFrom}.`, ...requests.map((r, i) => `\n# ${i + 1}. ${r.step}\n${toCurl(r)}`)].join('\n'));
    if (!result) {
      io.err(`# outcome: the sync would fail: ${error?.describe()}`);
      return EXIT.failure;
    }
    io.out([
      '',
      `# outcome: ${result.action}${result.leadId === undefined ? '' : `, lead id ${result.leadId}`}`,
      ...result.warnings.map((w) => `# warning: ${w}`),
    ].join('\n'));
    return EXIT.ok;
  },
};
