import BTree from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad';

/** A code unit at which UTF-16 order and UTF-8 byte order may disagree. */
const WIDE_UNIT = /[\uD800-\uFFFF]/;

/**
 * A string whose UTF-16 code unit order (JavaScript's `<`, and a default sort) is the UTF-8 byte order of
 * `key` (which is Unicode code point order). Most keys are their own sort key: the two orders agree unless a
 * surrogate (U+D800-U+DFFF, half of a character above U+FFFF) meets a unit U+E000-U+FFFF: `<` puts
 * '\u{1F511}' (D83D DD11) before '\uFFFD', UTF-8 after. For a key holding a unit from U+D800 up, every such
 * unit is moved: surrogates above U+FFFF's place (+0x2000), U+E000-U+FFFF down by 0x800. The map is one to
 * one and keeps every other unit's order, so prefixes stay prefixes. Costs one regex test for other keys.
 */
export function utf8SortKey(key: string): string {
  if (!WIDE_UNIT.test(key)) return key;
  let sortKey = '';
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    sortKey += String.fromCharCode(unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit);
  }
  return sortKey;
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

/** Branching factor: 64 inserted a little faster than sorted-btree's default 32 here; 32-256 are close. */
const NODE_SIZE = 64;

/** The plain UTF-16 comparison, on sort keys (utf8SortKey): native string compare, no per-character loop. */
function compareUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The live map's keys in UTF-8 byte order, for listing by prefix: a B+ tree (sorted-btree) of sort keys
 * (utf8SortKey), which for most keys are the very strings the map holds (no copy); a key that needs another
 * sort key is its value. add() and delete() are O(log n); a page of k keys costs O(log n + k). rebuild()
 * sorts once and bulk-loads, O(n log n).
 *
 * The caller keeps it in step with the map: add() when a key is created, delete() when one is removed,
 * rebuild() when the whole map is replaced. It holds the live state only; snapshot views need no order.
 */
export class KeyIndex {
  /** Sort key → the key, when they differ (undefined: the sort key is the key). */
  private tree = new BTree<string, string | undefined>(undefined, compareUnits, NODE_SIZE);

  get size(): number {
    return this.tree.size;
  }

  /** Adds `key`; adding a key already present does nothing. */
  add(key: string): void {
    const sortKey = utf8SortKey(key);
    this.tree.set(sortKey, sortKey === key ? undefined : key, false);
  }

  /** Removes `key`; removing a missing key does nothing. */
  delete(key: string): void {
    this.tree.delete(utf8SortKey(key));
  }

  has(key: string): boolean {
    return this.tree.has(utf8SortKey(key));
  }

  /** Replaces the content with `keys`, which must hold no key twice (a Map's keys). */
  rebuild(keys: Iterable<string>): void {
    const sortKeys: string[] = [];
    const originals = new Map<string, string>();
    for (const key of keys) {
      const sortKey = utf8SortKey(key);
      sortKeys.push(sortKey);
      if (sortKey !== key) originals.set(sortKey, key);
    }
    // The default sort compares UTF-16 code units natively: about twice as fast as a comparator function.
    sortKeys.sort();
    const values = originals.size === 0 ? new Array<undefined>(sortKeys.length) : sortKeys.map((k) => originals.get(k));
    this.tree = bulkLoad<string, string | undefined>(sortKeys, values, NODE_SIZE, compareUnits);
  }

  /**
   * One page of keys: those starting with `prefix` and ordered after `after`, in UTF-8 byte order, at most
   * `limit`. Keys sharing a prefix are contiguous in that order, so the walk starts at the later of `prefix`
   * and `after` and stops at the first key without the prefix (or one past the limit, to tell `more`).
   */
  range({ prefix, after, limit }: KeyRange): KeyPage {
    const sortPrefix = utf8SortKey(prefix);
    const sortAfter = after === undefined ? undefined : utf8SortKey(after);
    const start = sortAfter !== undefined && sortAfter > sortPrefix ? sortAfter : sortPrefix;
    const keys: string[] = [];
    for (const [sortKey, key] of this.tree.entries(start)) {
      if (sortKey === sortAfter) continue;
      if (!sortKey.startsWith(sortPrefix)) break;
      if (keys.length === limit) return { keys, more: true };
      keys.push(key ?? sortKey);
    }
    return { keys, more: false };
  }

  /** Every key, in order (for tests and tools). */
  *keys(): IterableIterator<string> {
    for (const [sortKey, key] of this.tree.entries()) yield key ?? sortKey;
  }
}
