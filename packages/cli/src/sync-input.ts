import type { CompiledMapping } from '@crm-sync/core';
import { baseUrlOption, listOption, onePositional, requiredOption, stringOption } from './args';
import type { CommandIO, parseCommandArgs } from './command';
import { readJsonInput } from './json-input';
import { compileMappingFile, loadPluginModules, PLUGIN_OPTION } from './mapping-file';

/** What `preview` and `sync` both take: a mapping, a contact event, and optionally a stored lead id and a base URL. */
export const SYNC_INPUT_OPTIONS = {
  contact: { type: 'string' }, 'lead-id': { type: 'string' }, 'base-url': { type: 'string' }, ...PLUGIN_OPTION,
} as const;

export const SYNC_INPUT_HELP = `Arguments:
  <mapping>               The mapping file (YAML or JSON).

Options:
  --contact <file|->      The contact event as JSON (a file, or - for standard input). Required.
  --lead-id <id>          The lead id already stored for the contact (the sync updates it).
                          Default: none.
  --base-url <url>        Use this base URL instead of the mapping's baseUrl.`;

export interface SyncInput {
  mapping: CompiledMapping;
  /** The contact event as read: the engine validates it. */
  event: unknown;
  knownLeadId?: string;
  baseUrl?: URL;
}

/** Checks the shared arguments (usage errors first), then loads plug-ins, the mapping and the contact. */
export async function readSyncInput({ values, positionals }: ReturnType<typeof parseCommandArgs>, io: CommandIO): Promise<SyncInput> {
  const file = onePositional(positionals, '<mapping>');
  const contactSource = requiredOption(values, 'contact');
  const knownLeadId = stringOption(values, 'lead-id');
  const baseUrl = baseUrlOption(values);
  loadPluginModules(listOption(values, 'plugin'));
  const mapping = compileMappingFile(file);
  return { mapping, event: await readJsonInput(contactSource, 'contact', io), knownLeadId, baseUrl };
}
