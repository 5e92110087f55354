#!/usr/bin/env node
import { resolve } from 'node:path';
import { main } from './main';

// `pnpm crm-sync …` runs this from the checkout's root whatever directory it was typed in, so a relative path
// (a mapping, a file to ingest, --data) would name a file there. pnpm says where it was typed (INIT_CWD): work there.
// Only for this checkout's own `crm-sync` script: another project's script of that name chose its directory itself.
const ownScript = process.env.npm_lifecycle_event === 'crm-sync' && process.env.npm_package_json === resolve(__dirname, '../../../package.json');
if (ownScript && process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);

// The runner's timers are unref'd (a pending wake-up must not keep a finished process alive), so a command that only
// waits on them (a reconcile pacing its reads, a rate-limited resync) would see Node exit mid-way, with exit code 0
// and no summary. The command is work in progress until its promise settles: hold the process open until then.
const hold = setInterval(() => undefined, 1 << 30);

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`crm-sync: ${(err as Error)?.stack ?? String(err)}\n`); process.exitCode = 1; },
).finally(() => clearInterval(hold));
