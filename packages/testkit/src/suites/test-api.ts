/**
 * The two functions a suite needs from a test framework. Jest's (and Vitest's) `describe` and `it` fit as they are.
 * A suite takes them as a parameter, or reads the globals when it is called, never when it is imported: importing
 * `@crm-sync/testkit` outside a test run stays safe.
 */
export interface TestApi {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>): void;
}

export function resolveTestApi(given: TestApi | undefined): TestApi {
  if (given) return given;
  const g = globalThis as unknown as Partial<TestApi>;
  if (typeof g.describe !== 'function' || typeof g.it !== 'function') {
    throw new Error('no test framework globals (describe, it): call the suite from a test file, or pass { test: { describe, it } }');
  }
  return { describe: g.describe.bind(globalThis), it: g.it.bind(globalThis) };
}
