import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestLog, sendJson, TestServer, type JsonReply } from './http-server';
import { FaultList } from './reference-crm/faults';
import type { CrmTestServer, Fault, LoggedRequest } from './reference-crm/types';

/**
 * What the reference CRM and the vendor emulators share: a TestServer on a free port, the request log and the
 * injected faults. A subclass answers requests (`handle`) and forgets its records on `reset` (`resetRecords`).
 */
export abstract class CrmServer implements CrmTestServer {
  protected readonly server: TestServer;
  protected readonly faults: FaultList;
  protected readonly log = new RequestLog();

  /** `onError` answers a request whose handler threw (in the CRM's error shape). */
  constructor(seed: number, onError: (err: unknown) => JsonReply) {
    this.faults = new FaultList(seed);
    this.server = new TestServer((req, res) => this.handle(req, res), (res, err) => sendJson(res, onError(err)));
  }

  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }

  /** Copies, in arrival order; secrets masked. */
  requests(): LoggedRequest[] {
    return this.log.all();
  }

  addFault(f: Fault): void {
    this.faults.add(f);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Forget records, requests and faults; the PRNG starts over. */
  reset(): void {
    this.resetRecords();
    this.faults.reset();
    this.log.reset();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  protected abstract resetRecords(): void;
}
