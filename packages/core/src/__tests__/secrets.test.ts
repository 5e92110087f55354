import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, maskSecrets, resolveSecretRef } from '../index';

const SECRET = 'k3y+/=&ü"x';

describe('maskSecrets', () => {
  it('masks every spelling a request may carry: raw, percent-encoded, form-encoded, JSON-escaped', () => {
    const spellings = [SECRET, encodeURIComponent(SECRET), new URLSearchParams({ s: SECRET }).toString().slice(2), JSON.stringify(SECRET).slice(1, -1)];
    const text = spellings.map((s, i) => `${i}:${s}`).join(' ');
    const masked = maskSecrets(text, [SECRET]);
    expect(masked).toBe('0:*** 1:*** 2:*** 3:***');
  });

  it('masks every occurrence of several secrets and ignores empty ones', () => {
    expect(maskSecrets('a-b-a', ['a', '', 'b'])).toBe('***-***-***');
    expect(maskSecrets('nothing here', [''])).toBe('nothing here');
  });
});

describe('resolveSecretRef', () => {
  it('reads env: and file: references', () => {
    process.env.CRM_SYNC_TEST_SECRET = 'from-env';
    expect(resolveSecretRef('env:CRM_SYNC_TEST_SECRET')).toBe('from-env');
    const file = join(mkdtempSync(join(tmpdir(), 'crm-sync-secret-')), 'key');
    writeFileSync(file, 'from-file\n');
    expect(resolveSecretRef(`file:${file}`)).toBe('from-file');
  });

  it('names the reference, never a value, when it cannot resolve', () => {
    delete process.env.CRM_SYNC_TEST_UNSET;
    expect(() => resolveSecretRef('env:CRM_SYNC_TEST_UNSET')).toThrow(new ConfigError('secret env:CRM_SYNC_TEST_UNSET: environment variable CRM_SYNC_TEST_UNSET is not set'));
    expect(() => resolveSecretRef('file:/nonexistent/key')).toThrow(expect.objectContaining({ code: 'ERR_SECRET_MISSING' }));
    expect(() => resolveSecretRef('literal')).toThrow(expect.objectContaining({ code: 'ERR_SECRET_REF' }));
  });
});
