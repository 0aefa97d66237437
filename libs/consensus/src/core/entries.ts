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
 * Number of entries, from ents[from] on, that fit in maxBytes of data, at most maxCount. At least one
 * entry when one is available, whatever its size (a large entry must still make progress).
 */
export function countWithinLimit(
  ents: readonly Entry[],
  from: number,
  to: number,
  maxBytes: number,
  maxCount = Infinity,
): number {
  const end = Math.min(to, from + maxCount);
  if (from >= end) return 0;
  let size = ents[from].data.byteLength;
  let i = from + 1;
  for (; i < end; i++) {
    size += ents[i].data.byteLength;
    if (size > maxBytes) break;
  }
  return i - from;
}
