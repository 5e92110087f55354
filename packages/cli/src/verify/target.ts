import { allowedHosts, isLoopbackHost } from '../args';

export { isLoopbackHost };

export interface TargetDecision {
  /** Hosts the HTTP client may reach over plain http and at private addresses. */
  allowHosts: string[];
  /** Set when verify must not run: the reason, for the operator. */
  refusal?: string;
}

/**
 * Verify writes a test lead into the CRM at `baseUrl`. Loopback is a local emulator or test CRM and needs no consent;
 * anything else is somebody's real CRM, so the operator confirms with --yes. A loopback base URL is allowed to the
 * HTTP client automatically; other private hosts need --allow-host, as for the runner.
 */
export function decideTarget(baseUrl: URL, opts: { yes: boolean; allowHosts: readonly string[] }): TargetDecision {
  // Loopback writes nothing anyone else sees.
  const loopback = isLoopbackHost(baseUrl.hostname);
  const allowHosts = allowedHosts(baseUrl, opts.allowHosts);
  if (loopback || opts.yes) return { allowHosts };
  return {
    allowHosts,
    refusal: `refusing to write a test lead to ${(baseUrl.origin + baseUrl.pathname).replace(/\/$/, '')}: it is not a loopback address. `
      + 'verify creates and updates a real lead there (marked crm_sync_test: true, never deleted); pass --yes to go ahead',
  };
}
