import type { Command } from '../command';
import { backfill } from './backfill';
import { deadLetters } from './dead-letters';
import { demo } from './demo';
import { ingest } from './ingest';
import { mockCrm } from './mock-crm';
import { preview } from './preview';
import { reconcile } from './reconcile';
import { resync } from './resync';
import { run } from './run';
import { status } from './status';
import { sync } from './sync';
import { validate } from './validate';
import { verify } from './verify';

/** Every `crm-sync` command. Add a command: write commands/<name>.ts exporting a Command, and list it here. */
export const commands: Command[] = [
  validate,
  preview,
  sync,
  mockCrm,
  verify,
  run,
  ingest,
  backfill,
  status,
  deadLetters,
  resync,
  reconcile,
  demo,
];
