import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './config-error';

/** What a bearer token may do: `read` (GET /kv), `readwrite` (also PUT and DELETE), `admin` (also /cluster). */
export type ApiRole = 'read' | 'readwrite' | 'admin';

const ROLES: readonly ApiRole[] = ['read', 'readwrite', 'admin'];

/** Whether a token of role `has` may do what needs `needs`. */
export function roleAllows(has: ApiRole, needs: ApiRole): boolean {
  return ROLES.indexOf(has) >= ROLES.indexOf(needs);
}

/** The key under which a token is kept: its SHA-256, so the node never holds or compares the tokens themselves. */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Parses an API tokens file: one `<token> <role>` per line (role: read, readwrite or admin); blank lines and
 * lines starting with `#` are ignored. Tokens are at least 16 characters without whitespace, each listed
 * once. Returns token key (tokenKey) → role. Throws ConfigError naming the file and line.
 */
export function parseApiTokens(text: string, file: string): Map<string, ApiRole> {
  const tokens = new Map<string, ApiRole>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `API_TOKENS_FILE ${file} line ${i + 1}`;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw new ConfigError(`${where}: expected '<token> <role>'`);
    const [token, role] = parts;
    if (!ROLES.includes(role as ApiRole)) throw new ConfigError(`${where}: the role must be one of ${ROLES.join(', ')}`);
    if (token.length < 16) throw new ConfigError(`${where}: a token must be at least 16 characters`);
    const key = tokenKey(token);
    if (tokens.has(key)) throw new ConfigError(`${where}: this token is listed twice`);
    tokens.set(key, role as ApiRole);
  }
  if (tokens.size === 0) throw new ConfigError(`API_TOKENS_FILE ${file} lists no token`);
  return tokens;
}

/** Reads and parses the API tokens file; an unreadable file is a ConfigError too. */
export function loadApiTokens(file: string): Map<string, ApiRole> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`API_TOKENS_FILE ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseApiTokens(text, file);
}
