import { maskSecrets, type HttpClient, type HttpRequest, type HttpResponse } from '@crm-sync/core';

/** One HTTP call as `verify` shows it: secrets masked, bodies cut to an excerpt. */
export interface Exchange {
  /** The mapping's endpoint (fetch, create, update, upsert). */
  endpoint: string;
  method: string;
  url: string;
  requestBody?: string;
  status?: number;
  responseBody?: string;
  /** Set when no answer arrived (network error, timeout, refused URL). */
  error?: string;
}

const KEPT_CHARS = 500;

function clip(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > KEPT_CHARS ? `${flat.slice(0, KEPT_CHARS)}…` : flat;
}

/**
 * Wraps the real HTTP client and keeps every exchange (masked) so the verifier can show what was sent and answered.
 * It changes nothing about the request: the engine builds it exactly as the runner's would be built.
 */
export class RecordingHttpClient implements HttpClient {
  private pending: Exchange[] = [];

  constructor(private readonly inner: HttpClient, private readonly secrets: readonly string[]) {}

  async send(req: HttpRequest): Promise<HttpResponse> {
    const mask = (s: string) => maskSecrets(s, this.secrets);
    const exchange: Exchange = {
      endpoint: req.step ?? '?', method: req.method, url: mask(req.url),
      requestBody: req.body === undefined ? undefined : clip(mask(req.body)),
    };
    this.pending.push(exchange);
    try {
      const res = await this.inner.send(req);
      exchange.status = res.status;
      exchange.responseBody = clip(mask(res.body));
      return res;
    } catch (err) {
      exchange.error = mask((err as Error)?.message ?? String(err));
      throw err;
    }
  }

  /** The exchanges since the last call: one step's worth. */
  take(): Exchange[] {
    const taken = this.pending;
    this.pending = [];
    return taken;
  }
}
