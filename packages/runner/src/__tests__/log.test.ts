import { createLogger, errorFields } from '../log';

function logged(write: (logger: ReturnType<typeof createLogger>) => void): Record<string, unknown> {
  const lines: string[] = [];
  write(createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(line); } } }));
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

describe('the log', () => {
  it('logs errorFields as they are: the code and the message, nothing made up', () => {
    const err = Object.assign(new Error('the config does not load'), { code: 'ERR_CONFIG_INVALID' });
    expect(logged((l) => l.error({ err: errorFields(err) }, 'reload failed')).err).toEqual({ code: 'ERR_CONFIG_INVALID', message: 'the config does not load' });
  });

  it('logs an Error with its type, message and stack', () => {
    expect(logged((l) => l.error({ err: new TypeError('raw') }, 'runner error')).err).toEqual({ type: 'TypeError', message: 'raw', stack: expect.stringContaining('TypeError: raw') });
  });

  it('logs an Error from another realm (a vm context) the same way', () => {
    const foreign = require('node:vm').runInNewContext('new RangeError("elsewhere")') as unknown;
    expect(foreign instanceof Error).toBe(false);
    expect(logged((l) => l.error({ err: foreign }, 'x')).err).toMatchObject({ type: 'RangeError', message: 'elsewhere' });
  });

  it('redacts tokens and authorization headers', () => {
    const line = logged((l) => l.info({ token: 't0k', headers: { authorization: 'Bearer t0k' } }, 'x'));
    expect(JSON.stringify(line)).not.toContain('t0k');
  });
});
