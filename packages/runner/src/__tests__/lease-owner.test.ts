import { spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { isDeadLocalOwner, leaseOwnerId } from '../dispatch/lease-owner';

/** The pid of a process that has exited (and been reaped). */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

describe('lease owners', () => {
  it('an owner id names the host and the process, and differs per runner of one process', () => {
    const [a, b] = [leaseOwnerId(), leaseOwnerId()];
    expect(a.startsWith(`${hostname()}:`)).toBe(true);
    expect(a).toContain(`:${process.pid}:`);
    expect(a).not.toBe(b);
  });

  it('only an owner of this host whose process has exited is dead', async () => {
    const pid = deadPid();
    expect(isDeadLocalOwner(leaseOwnerId(pid))).toBe(true);

    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
    try {
      expect(isDeadLocalOwner(leaseOwnerId(live.pid))).toBe(false);
    } finally {
      live.kill('SIGKILL');
      await new Promise((r) => live.once('exit', r));
    }
    expect(isDeadLocalOwner(leaseOwnerId())).toBe(false); // this process (another runner in it, or itself)
    expect(isDeadLocalOwner(leaseOwnerId(1))).toBe(false); // alive, possibly not ours to signal (EPERM)
    expect(isDeadLocalOwner(leaseOwnerId(pid).replace(hostname(), 'elsewhere'))).toBe(false);
    for (const odd of ['', 'suite', `${hostname()}:x:1`, `${hostname()}:-5:ab`, `:${pid}:ab`]) expect(isDeadLocalOwner(odd)).toBe(false);
  });
});
