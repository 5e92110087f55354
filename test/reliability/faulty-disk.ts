/**
 * Real filesystems that fail under a running daemon, for the disk-fault tests (Linux, root): a small tmpfs that can be
 * filled to the last byte (ENOSPC → SQLITE_FULL), and a loop-mounted ext4 that the kernel turns read-only under open
 * files (ext4's own error path, `errors=remount-ro`, triggered through sysfs), as a failing disk does. chmod or
 * `chattr +i` would not do: root ignores modes, and files already open stay writable.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8' });

/** Why these tests cannot run here, or undefined when they can (root, mount, loop devices, ext4's error trigger). */
export function faultyDiskUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (mount)';
  const probe = mkdtempSync(join(tmpdir(), 'crm-sync-disk-probe-'));
  try {
    const disk = new LoopExt4Disk(probe, 4);
    try {
      if (!existsSync(disk.errorTrigger())) return 'ext4 has no sysfs trigger_fs_error here';
    } finally {
      disk.unmount();
    }
    return undefined;
  } catch (err) {
    return `cannot mount a test filesystem: ${String((err as Error).message).split('\n')[0]}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** A tmpfs of `sizeMb` at `<dir>/mnt`. */
export class TmpfsDisk {
  readonly mountPoint: string;
  private readonly filler: string;

  constructor(dir: string, sizeMb: number) {
    this.mountPoint = join(dir, 'mnt');
    mkdirSync(this.mountPoint, { recursive: true });
    run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', this.mountPoint]);
    this.filler = join(this.mountPoint, 'filler');
  }

  /** Writes a filler file until the filesystem has not one block left. */
  fill(): void {
    const fd = openSync(this.filler, 'a');
    const chunk = Buffer.alloc(4096, 0xab);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
  }

  free(): void {
    rmSync(this.filler, { force: true });
  }

  unmount(): void {
    run('umount', ['-l', this.mountPoint]);
  }
}

/** An ext4 image of `sizeMb` in `<dir>/disk.img`, loop-mounted at `<dir>/mnt` with errors=remount-ro. */
export class LoopExt4Disk {
  readonly mountPoint: string;
  private readonly image: string;

  constructor(dir: string, sizeMb: number) {
    this.image = join(dir, 'disk.img');
    this.mountPoint = join(dir, 'mnt');
    mkdirSync(this.mountPoint, { recursive: true });
    run('truncate', ['-s', `${sizeMb}M`, this.image]);
    run('mkfs.ext4', ['-q', '-F', '-m', '0', this.image]);
    this.mount();
  }

  mount(): void {
    run('mount', ['-o', 'loop,errors=remount-ro', this.image, this.mountPoint]);
  }

  /** The sysfs file that makes ext4 report an error on this filesystem. */
  errorTrigger(): string {
    return join('/sys/fs/ext4', basename(run('findmnt', ['-n', '-o', 'SOURCE', this.mountPoint]).trim()), 'trigger_fs_error');
  }

  /** ext4 reports an error and, as mounted, turns itself read-only at once: open files included. */
  failReadOnly(): void {
    execFileSync('sh', ['-c', `echo crm-sync-disk-fault-test > ${this.errorTrigger()}`]);
  }

  /** The operator's repair: unmount (every file closed), check, mount read-write again. */
  repair(): void {
    this.unmount();
    try {
      run('e2fsck', ['-f', '-y', this.image]);
    } catch (err) {
      // Exit status 1 or 2: errors were found and corrected. Worse is a real failure.
      if (![1, 2].includes((err as { status?: number }).status ?? -1)) throw err;
    }
    this.mount();
  }

  unmount(): void {
    run('umount', [this.mountPoint]);
  }
}
