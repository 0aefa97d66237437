import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadApiTokens, parseApiTokens, roleAllows, tokenKey } from './api-tokens';
import { ConfigError } from './config-error';
import { loadNodeConfig } from './node-config';

describe('API tokens file', () => {
  it('parses tokens and roles, skipping blank lines and comments; keys are SHA-256 of the tokens', () => {
    const t = parseApiTokens('# who\n\nabcdefghijklmnop read\r\n  qrstuvwxyz0123456 admin  \n', 'f');
    expect([...t.entries()]).toEqual([
      [tokenKey('abcdefghijklmnop'), 'read'],
      [tokenKey('qrstuvwxyz0123456'), 'admin'],
    ]);
    expect(tokenKey('abcdefghijklmnop')).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['abcdefghijklmnop', /line 1: expected '<token> <role>'/],
    ['abcdefghijklmnop write', /line 1: the role must be one of read, readwrite, admin/],
    ['short read', /line 1: a token must be at least 16 characters/],
    ['abcdefghijklmnop read\nabcdefghijklmnop admin', /line 2: this token is listed twice/],
    ['# nothing\n', /lists no token/],
  ])('refuses %j with one line naming the file and line', (text, message) => {
    expect(() => parseApiTokens(text, 'tokens.txt')).toThrow(ConfigError);
    expect(() => parseApiTokens(text, 'tokens.txt')).toThrow(message);
  });

  it('orders the roles: admin > readwrite > read', () => {
    expect(roleAllows('admin', 'readwrite')).toBe(true);
    expect(roleAllows('readwrite', 'read')).toBe(true);
    expect(roleAllows('read', 'readwrite')).toBe(false);
    expect(roleAllows('readwrite', 'admin')).toBe(false);
  });

  it('is read through API_TOKENS_FILE; a missing file stops the node with one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-tokens-'));
    const file = join(dir, 'tokens');
    writeFileSync(file, 'abcdefghijklmnop readwrite\n');
    const base = { NODE_ID: 'n1', HTTP_PORT: '3001', PEER_URLS: '' };
    expect(loadNodeConfig({ ...base, API_TOKENS_FILE: file }).apiTokens?.get(tokenKey('abcdefghijklmnop'))).toBe('readwrite');
    expect(loadNodeConfig(base).apiTokens).toBeUndefined();
    expect(() => loadApiTokens(join(dir, 'missing'))).toThrow(/^API_TOKENS_FILE .*missing cannot be read: ENOENT$/);
  });
});
