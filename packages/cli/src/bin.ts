#!/usr/bin/env node
import { main } from './main';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`crm-sync: ${(err as Error)?.stack ?? String(err)}\n`); process.exitCode = 1; },
);
