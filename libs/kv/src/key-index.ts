import BTree from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad';

/**
 * Orders two strings as their UTF-8 encodings compare byte by byte (which is Unicode code point order).
 *
 * JavaScript's `<` compares UTF-16 code units, which agrees with code point order except where a surrogate
 * (U+D800-U+DFFF, half of a character above U+FFFF) meets a character U+E000-U+FFFF: `<` puts '\u{1F511}'
 * (surrogates D83D DD11) before '\uFFFD', UTF-8 puts it after. At the first differing code unit, moving the
 * surrogates above U+FFFF and U+E000-U+FFFF down by 0x800 restores code point order; every other unit keeps
 * its order. Cost: one pass over the common prefix, no allocation.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const length = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** What to list: the keys starting with `prefix`, after the key `after` (excluded), at most `limit` of them. */
export interface KeyRange {
  /** '' lists every key. */
  prefix: string;
  /** The cursor: the last key of the previous page (undefined or '': from the first key of the prefix). */
  after?: string;
  /** At least 1. */
  limit: number;
}

export interface KeyPage {
  /** In UTF-8 byte order. */
  keys: string[];
  /** Whether more keys of the prefix follow the last one returned. */
  more: boolean;
}

/** Branching factor of the tree: sorted-btree's default (measured fastest in its benchmarks). */
const NODE_SIZE = 32;

/**
 * The live map's keys in UTF-8 byte order, for listing by prefix: a B+ tree (sorted-btree) holding the key
 * strings the map already holds (no copy of their text). add() and delete() are O(log n); a page of k keys
 * costs O(log n + k). rebuild() sorts once and bulk-loads, O(n log n).
 *
 * The caller keeps it in step with the map: add() when a key is created, delete() when one is removed,
 * rebuild() when the whole map is replaced. It is the live state only; snapshot views need no order.
 */
export class KeyIndex {
  private tree = new BTree<string, undefined>(undefined, compareUtf8, NODE_SIZE);

  get size(): number {
    return this.tree.size;
  }

  /** Adds `key`; adding a key already present does nothing. */
  add(key: string): void {
    this.tree.set(key, undefined, false);
  }

  /** Removes `key`; removing a missing key does nothing. */
  delete(key: string): void {
    this.tree.delete(key);
  }

  has(key: string): boolean {
    return this.tree.has(key);
  }

  /** Replaces the content with `keys`, which must hold no key twice (a Map's keys). */
  rebuild(keys: Iterable<string>): void {
    const sorted = Array.from(keys).sort(compareUtf8);
    this.tree = bulkLoad(sorted, new Array<undefined>(sorted.length), NODE_SIZE, compareUtf8);
  }

  /**
   * One page of keys: those starting with `prefix` and ordered after `after`, in UTF-8 byte order, at most
   * `limit`. Keys sharing a prefix are contiguous in that order, so the walk starts at the later of `prefix`
   * and `after` and stops at the first key without the prefix (or one past the limit, to tell `more`).
   */
  range({ prefix, after, limit }: KeyRange): KeyPage {
    const start = after !== undefined && compareUtf8(after, prefix) > 0 ? after : prefix;
    const keys: string[] = [];
    for (const key of this.tree.keys(start)) {
      if (key === after) continue;
      if (!key.startsWith(prefix)) break;
      if (keys.length === limit) return { keys, more: true };
      keys.push(key);
    }
    return { keys, more: false };
  }

  /** Every key, in order (for tests and tools). */
  keys(): IterableIterator<string> {
    return this.tree.keys();
  }
}
