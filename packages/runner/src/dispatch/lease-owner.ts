import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Who holds a lease: `<place>:<pid>:<random>`, one id per Runner. `place` is the host name and, on Linux, the pid
 * namespace, because two containers may share a host name (host networking) while each has its own pids: a pid is
 * only meaningful where it was taken. The random part tells apart runners of one process (tests, embedding).
 */
export function leaseOwnerId(pid = process.pid): string {
  return `${thisPlace()}:${pid}:${randomUUID().slice(0, 8)}`;
}

/**
 * True only for an owner that ran here (same host and pid namespace) and whose process is gone. Anything else —
 * another host, a live process (even an unrelated one that reused the pid), an id not in this format — is left
 * to its lease, which then lapses as before.
 */
export function isDeadLocalOwner(owner: string): boolean {
  const parts = owner.split(':');
  if (parts.length < 3) return false;
  const pid = Number(parts.at(-2));
  const place = parts.slice(0, -2).join(':');
  if (place !== thisPlace() || !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else; it is alive.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

let place: string | undefined;

function thisPlace(): string {
  return (place ??= [hostname(), pidNamespace()].filter(Boolean).join(':'));
}

/** `/proc/self/ns/pid` reads `pid:[4026531836]`: the namespace's inode. Absent outside Linux. */
function pidNamespace(): string | undefined {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    return undefined;
  }
}
