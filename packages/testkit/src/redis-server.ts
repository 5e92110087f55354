/**
 * A real redis-server for tests and benchmarks: its own temp dir and free loopback port, AOF on (`appendfsync everysec` unless a
 * test asks for `always`), started before and stopped after. Kill and restart it on the same dir to test what AOF
 * keeps. Without redis-server the Redis tests skip with a message, except under CI=true, where they fail.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BINARY = process.env.REDIS_SERVER_BIN ?? 'redis-server';

export const redisServerAvailable: boolean = spawnSync(BINARY, ['--version']).status === 0;

/** `describe`, or — only when redis-server is missing and CI is not set — a skipped describe that says why. */
export function describeWithRedis(name: string, body: () => void): void {
  if (redisServerAvailable) return describe(name, body);
  if (process.env.CI) {
    describe(name, () => it('needs redis-server (scripts/setup.sh installs it)', () => { throw new Error(`${BINARY} not found on PATH; CI must run the Redis tests`); }));
    return;
  }
  // eslint-disable-next-line no-console
  console.warn(`skipping "${name}": ${BINARY} not found on PATH (install redis-server, or run scripts/setup.sh)`);
  describe.skip(name, body);
}

export interface RedisServerOptions {
  appendfsync?: 'everysec' | 'always';
  /** Extra `--name value` settings, e.g. { 'maxmemory-policy': 'allkeys-lru' }. */
  settings?: Record<string, string>;
}

export class RedisServer {
  private child?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'crm-sync-redis-'));

  private constructor(readonly port: number, private readonly opts: RedisServerOptions) {}

  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), opts);
    await server.restart();
    return server;
  }

  /** `redis://127.0.0.1:<port>/<db>` */
  url(db = 0): string {
    return `redis://127.0.0.1:${this.port}/${db}`;
  }

  /** (Re)starts the server on the same dir and port: it reloads its AOF. */
  async restart(): Promise<void> {
    const settings: Record<string, string> = {
      port: String(this.port), bind: '127.0.0.1', dir: this.dir, appendonly: 'yes', appendfsync: this.opts.appendfsync ?? 'everysec',
      save: '', 'maxmemory-policy': 'noeviction', daemonize: 'no', 'protected-mode': 'yes', loglevel: 'warning', ...this.opts.settings,
    };
    const args = Object.entries(settings).flatMap(([k, v]) => [`--${k}`, v]);
    const child = spawn(BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode} on port ${this.port}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${this.port} within 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** kill -9: whatever AOF had not written or fsynced is gone. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(sig);
    await exited;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
