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
 * It changes nothing about the request: the engine builds it exactly as the runner's would be built. Exchanges are
 * masked when they are taken, not when they happen: a token endpoint's answer carries an access token the engine
 * learns of (and passes to addSecret) only after the answer arrived.
 */
export class RecordingHttpClient implements HttpClient {
  private pending: Exchange[] = [];
  private readonly secrets: string[];

  constructor(private readonly inner: HttpClient, secrets: readonly string[]) {
    this.secrets = [...secrets];
  }

  /** Masks this value too, in every exchange taken from now on. */
  addSecret(value: string): void {
    if (value && !this.secrets.includes(value)) this.secrets.push(value);
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    const exchange: Exchange = { endpoint: req.step ?? '?', method: req.method, url: req.url, requestBody: req.body };
    this.pending.push(exchange);
    try {
      const res = await this.inner.send(req);
      exchange.status = res.status;
      exchange.responseBody = res.body;
      return res;
    } catch (err) {
      exchange.error = (err as Error)?.message ?? String(err);
      throw err;
    }
  }

  /** The exchanges since the last call (one step's worth), secrets masked and bodies cut to an excerpt. */
  take(): Exchange[] {
    const taken = this.pending;
    this.pending = [];
    const mask = (s: string) => maskSecrets(s, this.secrets);
    return taken.map((x) => ({
      ...x, url: mask(x.url),
      requestBody: x.requestBody === undefined ? undefined : clip(mask(x.requestBody)),
      responseBody: x.responseBody === undefined ? undefined : clip(mask(x.responseBody)),
      error: x.error === undefined ? undefined : mask(x.error),
    }));
  }
}
