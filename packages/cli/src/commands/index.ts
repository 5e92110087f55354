import type { Command } from '../command';

/** Every `crm-sync` command. Add a command: write commands/<name>.ts exporting a Command, and list it here. */
export const commands: Command[] = [];
