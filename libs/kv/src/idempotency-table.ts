/** The outcome of a write, as first applied: what a retry with the same Idempotency-Key is answered. */
export interface IdempotentOutcome {
  /** The log index of the entry that applied the write (its answer's `index`). */
  index: number;
  existed: boolean;
  conditionHeld: boolean;
  createIndex: number | null;
  modIndex: number | null;
}

/** One remembered Idempotency-Key. */
export interface IdempotencyRecord {
  /** The fingerprint of the request that first used the token (kv-command.ts, FINGERPRINT_BYTES). */
  fingerprint: Buffer;
  /** The `at` of the entry that first used it (the proposing leader's clock, ms since the epoch). */
  at: number;
  outcome: IdempotentOutcome;
}

/** The table as a snapshot holds it: its clock and its records, oldest first. */
export interface IdempotencySnapshot {
  clock: number;
  records: ReadonlyArray<readonly [string, IdempotencyRecord]>;
}

export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 600_000;
export const DEFAULT_IDEMPOTENCY_MAX_KEYS = 100_000;

export interface IdempotencyLimits {
  /** How long a token is remembered, measured on the entries' `at` (IDEMPOTENCY_WINDOW_S). */
  windowMs: number;
  /** At most this many tokens; the oldest is forgotten first (IDEMPOTENCY_MAX_KEYS). */
  maxKeys: number;
}

/**
 * The Idempotency-Keys the state machine has applied, with their outcomes. Part of the replicated state: it
 * changes only in apply, from the entries' content, so every replica holds the same table at the same
 * index (and a snapshot carries it).
 *
 * Time is the table's `clock`: the largest `at` of the entries applied so far (never a node's own clock).
 * Leaders' clocks differ a little, so an entry's `at` may be below the clock; the max keeps the clock
 * monotonic. A token is forgotten once the clock is `windowMs` past its `at`, or when `maxKeys` newer tokens
 * push it out (oldest first, in the order they were applied). Every replica must be configured with the same
 * limits: a replica with a shorter window would forget a token the others still answer.
 */
export class IdempotencyTable {
  private records = new Map<string, IdempotencyRecord>();
  private now = 0;

  constructor(private readonly limits: IdempotencyLimits = { windowMs: DEFAULT_IDEMPOTENCY_WINDOW_MS, maxKeys: DEFAULT_IDEMPOTENCY_MAX_KEYS }) {}

  get clock(): number {
    return this.now;
  }

  get size(): number {
    return this.records.size;
  }

  /** Moves the clock to `at` (if later) and forgets the tokens that fell out of the window. */
  advance(at: number): void {
    if (at <= this.now) return;
    this.now = at;
    const oldest = at - this.limits.windowMs;
    // Insertion order is apply order, which is `at` order up to leaders' clock differences: stopping at the
    // first token still in the window may keep an older one behind it a little longer; lookup() ignores it.
    for (const [token, record] of this.records) {
      if (record.at > oldest) break;
      this.records.delete(token);
    }
  }

  /** The token's record, if it is remembered and inside the window. */
  lookup(token: string): IdempotencyRecord | undefined {
    const record = this.records.get(token);
    return record !== undefined && record.at > this.now - this.limits.windowMs ? record : undefined;
  }

  /** Remembers a token applied now (after advance(record.at)); evicts the oldest beyond maxKeys. */
  remember(token: string, record: IdempotencyRecord): void {
    // A forgotten-but-not-yet-pruned token used again goes to the end, where its new `at` belongs.
    this.records.delete(token);
    this.records.set(token, record);
    for (const oldest of this.records.keys()) {
      if (this.records.size <= this.limits.maxKeys) break;
      this.records.delete(oldest);
    }
  }

  /** A copy of the table (O(tokens), at most maxKeys), for a snapshot view. */
  snapshot(): IdempotencySnapshot {
    return { clock: this.now, records: [...this.records] };
  }

  /** A table with `snapshot`'s content under `limits` (the limits are this node's, not the snapshot's). */
  static restore(snapshot: IdempotencySnapshot, limits?: IdempotencyLimits): IdempotencyTable {
    const table = new IdempotencyTable(limits);
    table.now = snapshot.clock;
    for (const [token, record] of snapshot.records) table.remember(token, record);
    return table;
  }
}
