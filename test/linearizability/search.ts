import { ConfigCache } from './config-cache';
import { LinearizedSet } from './linearized-set';
import { Model, Operation } from './model';

/**
 * The Wing & Gong search with Lowe's memoization (the algorithm of Porcupine and Knossos' "wgl"), for
 * one partition of a history.
 *
 * The history is a doubly linked list of call and return events in time order (calls before returns at
 * equal times: intervals are closed). The search walks it from the head: at a call it tries to linearize
 * that operation now (the model must accept its output from the current state, and the configuration
 * (linearized set, new state) must be new); on success it lifts the call and its return out of the list,
 * pushes the move, and restarts from the head. Reaching a return means that operation can no longer be
 * linearized after the current prefix: it undoes the last move and tries the next call after it. The
 * history is linearizable when every operation of known outcome is linearized; not linearizable when
 * the search must undo with nothing left to undo.
 *
 * Operations of unknown outcome have no return event: they stay callable forever and need never be
 * linearized (they may not have taken effect). They are kept out of the list, in classes (rule 3), and
 * tried before the list's calls: the order in which moves are tried does not change the verdict, but
 * this one finds linearizations sooner (an old pending write is often what the next read saw).
 *
 * With `prune` (the default), four rules cut moves. Each keeps the verdict exact, because the search
 * still finds a linearization with the fewest unknown-outcome operations, in a canonical order:
 * 1. An unknown-outcome operation that would leave the state as it is is not tried (a shortest
 *    linearization has none: removing it changes nothing).
 * 2. A known-outcome operation that the model says is read-only (`isReadOnly`: it never changes any state,
 *    e.g. a read, a cas whose compare failed) and that the model accepts now is linearized at once, with
 *    no later alternative tried at that point: moving it earlier in a linearization keeps every state the
 *    same and respects real time (every operation that returned before its call is already linearized).
 *    Being a no-op in the current state is not enough: a delete of an absent key is one, but moved before
 *    a put it would change what follows.
 * 3. Interchangeable operations (equal `symmetryKey`: same input, same output) are not all tried. Of
 *    unknown-outcome ones, only the earliest-called one not yet linearized: once called, they can take
 *    each other's places. Of known-outcome ones the list offers, only the one that returns first: it can
 *    take the place of any later-returning one (its deadline is earlier, and it is already called).
 * 4. Right after an unknown-outcome operation, no blind write (`isBlindWrite`: accepted in every state,
 *    and the state after it does not depend on the state before) is tried: the blind write would erase
 *    its effect, and a shortest linearization has no such pair. This is what keeps timed-out writes that
 *    never took effect from multiplying the search: each must be observed right away or not be placed.
 *    Because it depends on the last move, the memo keys on (linearized set, state, last move unknown?).
 */

export interface SearchOptions {
  /** `performance.now()` after which the search gives up with 'unknown'. */
  deadline: number;
  /** Memo size after which the search gives up with 'unknown'. */
  maxCacheBytes: number;
  /** Apply the pruning rules above (default true); false runs the plain algorithm, for cross-checks. */
  prune?: boolean;
}

export interface SearchResult<S> {
  verdict: 'linearizable' | 'violation' | 'unknown';
  /**
   * linearizable: a linearization (indexes into the partition's operations) of every operation of known
   * outcome and of the unknown ones that took effect. Otherwise the longest linearizable prefix found.
   */
  sequence: number[];
  /** The model state after `sequence`. */
  state: S;
  /** violation: a completed operation that cannot be linearized after `sequence`... */
  blocked?: number;
  /** ...while these (called, not yet linearized) operations were all tried in its place. */
  candidates?: number[];
  /** unknown: which budget ran out. */
  reason?: string;
  /** Configurations memoized. */
  configurations: number;
  /** Search iterations (tries, moves and undos). */
  steps: number;
}

const BUDGET_CHECK_MASK = 0x3ff;
// A module binding rather than a global lookup in the hot loop (globals are slow inside jest's sandbox).
const imul = Math.imul;
const INFINITY = Infinity;
const USEFUL_INDEX_BYTES = 64 * 1024 * 1024;

export function searchPartition<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: SearchOptions,
): SearchResult<S> {
  const n = history.length;
  const prune = options.prune ?? true;

  // Number operations as LinearizedSet wants: known outcomes in call order, then unknown ones in call order.
  const sortKey = new Float64Array(n);
  const calls = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    calls[k] = history[k].call;
    sortKey[k] = history[k].ret === INFINITY ? 1 : 0;
  }
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => sortKey[a] - sortKey[b] || calls[a] - calls[b] || a - b);
  const ops = order.map((k) => history[k]);
  let required = 0;
  while (required < n && ops[required].ret !== INFINITY) required++;
  const original = (i: number) => order[i];

  const readOnly = new Uint8Array(n);
  const blindWrite = new Uint8Array(n);
  if (prune) {
    for (let i = 0; i < n; i++) {
      if (i < required && model.isReadOnly?.(ops[i].input, ops[i].output)) readOnly[i] = 1;
      if (model.isBlindWrite?.(ops[i].input, ops[i].output)) blindWrite[i] = 1;
    }
  }

  // Known outcomes: a doubly linked list of events; node i is the call of operation i, node n + i its return.
  const HEAD = 2 * n;
  const events: number[] = [];
  for (let i = 0; i < required; i++) events.push(i, n + i);
  const time = new Float64Array(2 * n);
  for (let i = 0; i < required; i++) {
    time[i] = ops[i].call;
    time[n + i] = ops[i].ret;
  }
  // Node numbers put calls (< n) before returns (>= n) at equal times, as closed intervals need.
  events.sort((a, b) => time[a] - time[b] || a - b);
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = HEAD;
  for (const node of events) {
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  const lift = (i: number) => {
    const ret = n + i;
    next[prev[ret]] = next[ret];
    if (next[ret] !== -1) prev[next[ret]] = prev[ret];
    next[prev[i]] = next[i];
    if (next[i] !== -1) prev[next[i]] = prev[i];
  };
  const unlift = (i: number) => {
    if (next[i] !== -1) prev[next[i]] = i;
    next[prev[i]] = i;
    const ret = n + i;
    if (next[ret] !== -1) prev[next[ret]] = ret;
    next[prev[ret]] = ret;
  };

  // Unknown outcomes: never returning, each is callable from its call on. They are grouped in classes of
  // interchangeable operations (rule 3; a class of one without pruning), ordered by their first call;
  // only a class's first unlinearized member (its head) is tried. Classes with members left form a linked
  // list, so that exhausted ones cost nothing.
  const classOf = new Int32Array(n).fill(-1);
  const members: number[][] = [];
  {
    const byKey = new Map<string, number>();
    for (let i = required; i < n; i++) {
      const key = prune ? model.symmetryKey?.(ops[i].input, ops[i].output) : undefined;
      let c = key === undefined ? undefined : byKey.get(key);
      if (c === undefined) {
        c = members.length;
        members.push([]);
        if (key !== undefined) byKey.set(key, c);
      }
      classOf[i] = c;
      members[c].push(i);
    }
  }
  const classes = members.length;
  const NO_CLASS = classes; // sentinel of the list of classes
  const linearizedInClass = new Int32Array(classes);
  const classFirstCall = members.map((m) => ops[m[0]].call);
  const nextClass = new Int32Array(classes + 1);
  const prevClass = new Int32Array(classes + 1);
  for (let c = 0; c <= classes; c++) {
    nextClass[c] = c === classes ? 0 : c + 1;
    prevClass[c] = c === 0 ? classes : c - 1;
  }
  const takeFromClass = (c: number) => {
    if (++linearizedInClass[c] === members[c].length) {
      nextClass[prevClass[c]] = nextClass[c];
      prevClass[nextClass[c]] = prevClass[c];
    }
  };
  const giveBackToClass = (c: number) => {
    if (linearizedInClass[c]-- === members[c].length) {
      nextClass[prevClass[c]] = c;
      prevClass[nextClass[c]] = c;
    }
  };

  // Which classes can act on a given state (the model accepts them, and, pruning, they change it), known
  // once per distinct state, so that the scan skips the others without stepping the model.
  const usefulByState = new Map<number, { state: S; useful: Uint8Array }[]>();
  let usefulBytes = 0;
  const usefulIn = (s: S): Uint8Array | undefined => {
    if (classes < 8) return undefined;
    const hash = model.hash(s);
    let bucket = usefulByState.get(hash);
    for (const e of bucket ?? []) if (model.equal(e.state, s)) return e.useful;
    if (usefulBytes > USEFUL_INDEX_BYTES) return undefined;
    const useful = new Uint8Array(classes);
    for (let c = 0; c < classes; c++) {
      const op = ops[members[c][0]];
      const [ok, after] = model.step(s, op.input, op.output);
      useful[c] = ok && !(prune && model.equal(s, after)) ? 1 : 0;
    }
    if (!bucket) usefulByState.set(hash, (bucket = []));
    bucket.push({ state: s, useful });
    usefulBytes += classes;
    return useful;
  };

  const linearized = new LinearizedSet(required, n - required);
  const key = new Uint32Array(linearized.maxKeyWords);
  const cache = new ConfigCache<S>((a, b) => model.equal(a, b));
  const memoize = (state: S) =>
    cache.add(key, linearized.key(key), linearized.hash ^ imul(model.hash(state), 0x9e3779b1), state);

  // The stack of moves; for an unknown-outcome move, also where its configuration's scan was.
  const moveOp = new Int32Array(n);
  const moveForced = new Uint8Array(n);
  const moveState: S[] = new Array<S>(n);
  const moveLimit = new Float64Array(n);
  const moveReturn = new Int32Array(n);
  let depth = 0;
  let state = model.init();
  let remaining = required;
  let steps = 0;

  // The scan of a configuration: first the classes of unknown-outcome operations called before the
  // first return in the list (`blocking`, at time `limit`; they are the likeliest to be overdue), from
  // `cls`, then the calls in the list before that return, from `entry`.
  let entry = -1;
  let cls = NO_CLASS;
  let limit = 0;
  let blocking = -1;
  let useful: Uint8Array | undefined;
  // Rule 3 for known outcomes: of the interchangeable operations the list offers, only the one that
  // returns first is tried (`firstOfClass`, per class, valid while `classStamp` is this scan's).
  const reqClass = new Int32Array(required).fill(-1);
  let requiredClasses = 0;
  if (prune && model.symmetryKey) {
    const byKey = new Map<string, number>();
    for (let i = 0; i < required; i++) {
      const key = model.symmetryKey(ops[i].input, ops[i].output);
      if (key === undefined) continue;
      let c = byKey.get(key);
      if (c === undefined) byKey.set(key, (c = requiredClasses++));
      reqClass[i] = c;
    }
  }
  const firstOfClass = new Int32Array(requiredClasses);
  const classStamp = new Int32Array(requiredClasses);
  let scanStamp = 0;
  /** Finds the first return and, in the calls before it, the first-returning member of each class. */
  const scanList = () => {
    scanStamp++;
    let node = next[HEAD];
    for (; node !== -1 && node < n; node = next[node]) {
      const c = reqClass[node];
      if (c < 0) continue;
      if (classStamp[c] !== scanStamp) {
        classStamp[c] = scanStamp;
        firstOfClass[c] = node;
      } else if (ops[node].ret < ops[firstOfClass[c]].ret) {
        firstOfClass[c] = node;
      }
    }
    blocking = node;
    limit = node === -1 ? INFINITY : ops[node - n].ret;
  };
  const startScan = () => {
    useful = usefulIn(state);
    scanList();
    cls = nextClass[NO_CLASS];
    entry = next[HEAD];
  };
  startScan();

  // The deepest dead end so far, in internal numbering (mapped back once, in the result).
  let best: { sequence: Int32Array; state: S; blocking: number; candidates: number[] } | undefined;
  const result = (verdict: SearchResult<S>['verdict'], reason?: string): SearchResult<S> => {
    if (verdict === 'linearizable' || !best) best = { sequence: moveOp.slice(0, depth), state, blocking: -1, candidates: [] };
    return {
      verdict,
      sequence: Array.from(best.sequence, original),
      state: best.state,
      blocked: best.blocking === -1 ? undefined : original(best.blocking - n),
      candidates: best.blocking === -1 ? undefined : best.candidates.map(original),
      reason,
      configurations: cache.size,
      steps,
    };
  };
  const recordDeadEnd = () => {
    if (best && depth <= best.sequence.length) return;
    const candidates: number[] = [];
    for (let node = next[HEAD]; node !== blocking && node !== -1; node = next[node]) {
      if (node < n) candidates.push(node);
    }
    for (let c = nextClass[NO_CLASS]; c !== NO_CLASS && classFirstCall[c] <= limit; c = nextClass[c]) {
      const head = members[c][linearizedInClass[c]];
      if (ops[head].call <= limit) candidates.push(head);
    }
    best = { sequence: moveOp.slice(0, depth), state, blocking, candidates };
  };

  for (;;) {
    if (remaining === 0) return result('linearizable');
    if ((++steps & BUDGET_CHECK_MASK) === 0) {
      if (performance.now() > options.deadline) return result('unknown', 'time budget exhausted');
      if (cache.bytes > options.maxCacheBytes) return result('unknown', 'memory budget exhausted');
    }

    // Pick the next operation to try in this configuration, or find it exhausted.
    let i = -1;
    if (cls !== NO_CLASS) {
      if (classFirstCall[cls] > limit) {
        cls = NO_CLASS; // this class and the following ones were called after the return
        continue;
      }
      const c = cls;
      cls = nextClass[c];
      if (useful && !useful[c]) continue;
      const head = members[c][linearizedInClass[c]];
      if (ops[head].call > limit) continue;
      i = head;
    } else if (entry >= 0 && entry < n) {
      i = entry;
      entry = next[entry];
      if (reqClass[i] >= 0 && firstOfClass[reqClass[i]] !== i) continue; // rule 3
    }

    let backtrack = i === -1;
    if (i === -1) {
      recordDeadEnd();
    } else {
      const unknown = i >= required;
      if (linearized.flag && blindWrite[i]) continue; // rule 4
      const [ok, after] = model.step(state, ops[i].input, ops[i].output);
      if (!ok) continue;
      if (prune && unknown && model.equal(state, after)) continue; // rule 1
      const flagBefore = linearized.flag;
      linearized.add(i);
      linearized.setFlag(prune && unknown ? 1 : 0);
      if (memoize(after)) {
        moveOp[depth] = i;
        moveState[depth] = state;
        moveForced[depth] = readOnly[i]; // rule 2
        moveLimit[depth] = limit;
        moveReturn[depth] = blocking;
        depth++;
        state = after;
        if (unknown) {
          takeFromClass(classOf[i]);
        } else {
          lift(i);
          remaining--;
        }
        startScan();
        continue;
      }
      linearized.remove(i);
      linearized.setFlag(flagBefore);
      // Rule 2: the forced move is a known dead end, so is this configuration.
      if (readOnly[i]) backtrack = true;
    }

    if (backtrack) {
      let forced: number;
      do {
        if (depth === 0) return result('violation');
        depth--;
        i = moveOp[depth];
        forced = moveForced[depth];
        state = moveState[depth];
        moveState[depth] = undefined as S;
        linearized.remove(i);
        linearized.setFlag(prune && depth > 0 && moveOp[depth - 1] >= required ? 1 : 0);
        if (i >= required) {
          giveBackToClass(classOf[i]);
        } else {
          unlift(i);
          remaining++;
        }
        steps++;
      } while (forced);
      limit = moveLimit[depth];
      blocking = moveReturn[depth];
      if (i >= required) {
        scanList();
        cls = nextClass[classOf[i]];
        entry = next[HEAD];
        useful = usefulIn(state);
      } else {
        scanList();
        cls = NO_CLASS;
        entry = next[i];
      }
    }
  }
}
