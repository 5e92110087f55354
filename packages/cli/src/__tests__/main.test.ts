import { commands } from '../commands';
import { runCli } from './harness';

describe('crm-sync', () => {
  test('--help lists every command with its summary', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of commands) expect(r.out).toMatch(new RegExp(`^  ${c.name} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  });

  test('no command prints the usage and exits 2; an unknown one names it', async () => {
    expect(await runCli([])).toMatchObject({ code: 2, out: expect.stringContaining('Usage: crm-sync <command>') });
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown command "frobnicate"');
  });

  test.each(commands.map((c) => [c.name]))('%s --help shows its usage and options', async (name) => {
    const r = await runCli([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Usage: crm-sync ${name}`);
    const command = commands.find((c) => c.name === name)!;
    for (const option of Object.keys(command.options)) expect(r.out).toContain(`--${option}`);
  });
});
