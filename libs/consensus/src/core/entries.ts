import { Entry } from './types';

/** Bytes of entry data counted against size limits (maxSizePerMsg, maxUncommittedEntriesSize, ...). */
export function entrySize(e: Entry): number {
  return e.data.byteLength;
}

/** Sum of entrySize over `ents`. */
export function payloadSize(ents: readonly Entry[]): number {
  let s = 0;
  for (let i = 0; i < ents.length; i++) s += ents[i].data.byteLength;
  return s;
}

/**
 * Number of entries of ents[from, to) that fit in maxBytes of data, counted from `from`. At least one
 * entry when one is available, whatever its size (a large entry must still make progress).
 */
export function countWithinLimit(ents: readonly Entry[], from: number, to: number, maxBytes: number): number {
  if (from >= to) return 0;
  let size = ents[from].data.byteLength;
  let i = from + 1;
  for (; i < to; i++) {
    size += ents[i].data.byteLength;
    if (size > maxBytes) break;
  }
  return i - from;
}
