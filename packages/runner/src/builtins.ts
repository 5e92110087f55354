import { registerAdapterModule, type Adapter } from '@crm-sync/core';
import type { DependencyContainer } from 'tsyringe';
import * as authKey from '@crm-sync/adapter-auth-key';
import * as basic from '@crm-sync/adapter-basic';
import * as bearer from '@crm-sync/adapter-bearer';
import * as bodySecret from '@crm-sync/adapter-body-secret';
import * as hmac from '@crm-sync/adapter-hmac';
import * as fetchCreateUpdate from '@crm-sync/adapter-fetch-create-update';
import * as noFetch from '@crm-sync/adapter-no-fetch';
import * as upsert from '@crm-sync/adapter-upsert';
import * as updateOnly from '@crm-sync/adapter-update-only';

const BUILTINS = [authKey, basic, bearer, bodySecret, hmac, fetchCreateUpdate, noFetch, upsert, updateOnly];

/** Registers the adapters that ship with crm-sync. Safe to call more than once. */
export function registerBuiltinAdapters(container?: DependencyContainer): Adapter[] {
  return BUILTINS.flatMap((m) => registerAdapterModule(m, container));
}

/**
 * Loads third-party adapter packages by module name (resolved from `fromDir`, default the working directory) and
 * registers what they export. This is the whole plug-in mechanism: no edit to crm-sync.
 */
export function loadPlugins(names: readonly string[], fromDir = process.cwd(), container?: DependencyContainer): Adapter[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const req = require('node:module').createRequire(`${fromDir.replace(/\/+$/, '')}/`);
  return names.flatMap((n) => registerAdapterModule(req(n), container));
}
