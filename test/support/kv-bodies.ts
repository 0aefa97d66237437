/**
 * What a `GET /kv/:key` answers for `key` holding `value`: the two fields compared exactly, and the key's
 * createIndex and modIndex (log indexes, which depend on how many entries came before) only as numbers.
 * A spec that knows the indexes compares them itself.
 */
export function keyValue(key: string, value: string): { key: string; value: string; createIndex: number; modIndex: number } {
  return { key, value, createIndex: expect.any(Number), modIndex: expect.any(Number) };
}
