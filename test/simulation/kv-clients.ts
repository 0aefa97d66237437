/**
 * Client histories produced inside the simulation: a Cluster of production RaftNodes whose state machine
 * is the real KvStateMachine (a fresh one per incarnation, rebuilt from the log as in production), and K
 * simulated clients, sequential processes like HTTP clients, each calling a real KvService (the code the
 * HTTP controller calls) on the node it talks to. Every operation is recorded in the history format of
 * test/linearizability (history.ts) with virtual times, and the whole history is checked for
 * linearizability at the end, after the faults of a random schedule.
 *
 * How a client maps what it learns to an outcome (as an HTTP client would, see the KV error filter):
 * - ok:      put/delete applied (delete: `found` = existed); get answered (found/value).
 * - fail:    NotLeaderError (the client then follows the redirect to the named leader at once),
 *            NoLeaderError, ProposalRejectedError, ProposalLostError, ShuttingDownError, ReadTimeoutError,
 *            StorageFullError (507, or 503 for a read: the node's disk is full), the node is down
 *            (connection refused). Nothing took effect.
 * - unknown: ProposalTimeoutError, any other error, or no answer within the client timeout (its node
 *            crashed, or is cut off): the client gives up, talks to another node and moves on.
 *
 * Deterministic: everything random comes from the seed; answers are seen at the virtual time they are given
 * (Cluster.runForAsync drains promise callbacks after every event).
 */
import {
  Entry,
  isStorageFull,
  NoLeaderError,
  NodeId,
  NotLeaderError,
  ProposalLostError,
  ProposalRejectedError,
  ProposalTimeoutError,
  RaftNode,
  ReadTimeoutError,
  ShuttingDownError,
  StateMachine,
} from '@app/consensus';
import { decodeCommand, KvService, KvStateMachine } from '@app/kv';
import { checkHistory, CheckResult } from '../linearizability/checker';
import { HistoryOp, OpKind } from '../linearizability/history';
import { Cluster, ClusterOptions, SnapshotStats, TICK } from './cluster';
import { entryIdent } from './invariants';
import { RELIABLE } from './network';
import { chaos, randomClusterOptions } from './random-schedule';
import { Rng } from './rng';

/** Which faults run while the clients work. */
export type KvFaults =
  /** The random schedule's faults (random-schedule.ts `chaos`): crashes, restarts, partitions, isolated
   * leaders, one-way links, network changes, transfers, campaigns, disk faults. */
  | 'random'
  /** Repeatedly cut the leader (and in a 5-node cluster one follower) off from the majority, then heal,
   * on a reliable network with check-quorum off: a deposed leader that keeps believing it leads, and
   * keeps its clients, next to a new leader. */
  | 'deposed-leader';

export interface KvRunOptions {
  seed: number;
  /**
   * Operations that reach the checker: the clients stop once this many ended ok or unknown (failed attempts,
   * which the checker drops, do not count; at most 4 times as many attempts are made). Default 150.
   */
  ops?: number;
  faults?: KvFaults;
  /** Wraps the RaftNode a client's KvService runs on (the spec uses it to plant a bug). Default: none. */
  wrapRaft?: (raft: RaftNode) => RaftNode;
  /** Overrides of the cluster options drawn from the seed. */
  cluster?: Partial<ClusterOptions>;
  /** Wall-clock budget of the linearizability check (ms). Default 10 s. */
  checkBudgetMs?: number;
}

export interface KvRunSummary {
  seed: number;
  size: number;
  clients: number;
  keys: number;
  ops: number;
  ok: number;
  fail: number;
  unknown: number;
  /** Virtual time at the end. */
  time: number;
  /** Snapshots taken, compactions, MsgSnap sent and installed, restores (see SnapshotStats). */
  snapshots: SnapshotStats;
  verdict: CheckResult['verdict'];
  checkMs: number;
  /** Errors a client met that are not the driver's typed errors (recorded as outcome unknown). */
  otherErrors: string[];
  /** Why attempts failed or ended unknown, by error name ('down': node down; 'gave up': client timeout). */
  reasons: Record<string, number>;
  history: HistoryOp[];
  result: CheckResult;
}

/** The command that replays one seed of the spec. */
export function kvReplayCommand(seed: number, faults: KvFaults = 'random'): string {
  return `SIM_SEED=${seed}${faults === 'random' ? '' : ` SIM_FAULTS=${faults}`} npx jest test/simulation/linearizability.spec.ts`;
}

/** The history is not linearizable (or a Raft invariant broke while it was produced). */
export class KvLinearizabilityError extends Error {
  constructor(
    message: string,
    readonly summary?: KvRunSummary,
  ) {
    super(message);
    this.name = 'KvLinearizabilityError';
  }
}

/** Time units between two turns of the client driver (answers are still seen at their exact time). */
const STEP = 2;
/** Proposals and reads time out on the node after this many ticks (ProposalTimeoutError: outcome unknown). */
const REQUEST_TIMEOUT_TICKS = 30;
/** A client gives up on a request after this long (its node crashed or is unreachable): outcome unknown. */
const CLIENT_TIMEOUT = (REQUEST_TIMEOUT_TICKS + 10) * TICK;
/** Redirects a client follows at once before backing off (two nodes may briefly name each other). */
const MAX_REDIRECTS = 3;
const KV_LIMITS = { maxKeyBytes: 64, maxValueBytes: 64 };

interface SimClient {
  name: string;
  target: NodeId;
  /** The request in flight. */
  pending?: HistoryOp;
  /** May issue its next request at this time. */
  nextAt: number;
  /** Re-issue this request (the same operation) at the redirect's leader. */
  redirect?: { op: OpKind; key: string; value?: string };
  redirects: number;
  seq: number;
}

/**
 * Runs one seed: cluster and workload drawn from it, clients issuing puts, gets and deletes under faults,
 * then quiet, settle (heal, restart all, every node applies everything), one final read of every key, and
 * the linearizability check. Throws KvLinearizabilityError (naming the seed and the replay command) on a
 * violation or a broken invariant; returns the summary otherwise (including an 'unknown' verdict).
 */
export async function runKvClients(options: KvRunOptions): Promise<KvRunSummary> {
  const { seed } = options;
  const faults = options.faults ?? 'random';
  const rng = new Rng(seed ^ 0x6b76c11e);
  const drawn = randomClusterOptions(seed, rng);
  const size = faults === 'deposed-leader' ? rng.pick([3, 5]) : rng.pick([2, 3, 3, 3, 4, 5, 5]);
  const machines = new Map<NodeId, KvStateMachine>();
  const clusterOptions: ClusterOptions = {
    ...drawn,
    ...(faults === 'deposed-leader' ? { net: RELIABLE, checkQuorum: false } : {}),
    size,
    requestTimeoutTicks: REQUEST_TIMEOUT_TICKS,
    traceSize: 60,
    ...options.cluster,
    stateMachine: (id) => {
      const kv = new KvStateMachine();
      machines.set(id, kv);
      return skipForeignEntries(kv);
    },
  };
  const c = new Cluster(clusterOptions);
  const keys = ['a', 'b', 'c'].slice(0, rng.range(1, 3));
  const clientRng = rng.fork();
  const faultRng = rng.fork();
  const history: HistoryOp[] = [];
  const clients: SimClient[] = Array.from({ length: rng.range(3, 5) }, (_, i) => ({
    name: `c${i + 1}`,
    target: clientRng.pick(c.ids),
    nextAt: 0,
    redirects: 0,
    seq: 0,
  }));
  const wrap = options.wrapRaft ?? ((r: RaftNode) => r);
  let issuedCount = 0;
  let effective = 0;
  /** Errors other than the typed ones (recorded as unknown), for the summary. */
  const otherErrors = new Set<string>();
  const reasons: Record<string, number> = {};
  const because = (why: string): void => {
    reasons[why] = (reasons[why] ?? 0) + 1;
  };

  const finish = (cl: SimClient, rec: HistoryOp, outcome: HistoryOp['outcome'], result?: HistoryOp['result']): void => {
    rec.outcome = outcome;
    if (outcome !== 'fail') effective++;
    if (outcome !== 'unknown') rec.end = c.now;
    if (result) rec.result = result;
    cl.pending = undefined;
  };
  const backoff = (cl: SimClient, newTarget: boolean): void => {
    cl.redirects = 0;
    cl.redirect = undefined;
    if (newTarget) cl.target = clientRng.pick(c.ids);
    cl.nextAt = c.now + clientRng.range(2, 5) * TICK;
  };

  /** Issues the client's next request (or the redirected one) at the current virtual time. */
  const issue = (cl: SimClient, forced?: { op: OpKind; key: string }): void => {
    const again = forced ? undefined : cl.redirect;
    cl.redirect = undefined;
    const roll = clientRng.next();
    const op: OpKind = forced?.op ?? again?.op ?? (roll < 0.4 ? 'put' : roll < 0.85 ? 'get' : 'delete');
    const key = forced?.key ?? again?.key ?? clientRng.pick(keys);
    const value = op === 'put' ? (again?.value ?? `${cl.name}.${++cl.seq}`) : undefined;
    const rec: HistoryOp = { id: history.length, client: cl.name, op, key, start: c.now, outcome: 'unknown' };
    if (value !== undefined) rec.value = value;
    history.push(rec);
    issuedCount++;
    cl.pending = rec;
    const node = c.node(cl.target);
    const machine = machines.get(cl.target);
    if (!node.node || !machine) {
      // Connection refused: nothing was sent.
      because('down');
      finish(cl, rec, 'fail');
      backoff(cl, true);
      return;
    }
    const kv = new KvService(wrap(node.node), machine, KV_LIMITS);
    const request: Promise<HistoryOp['result'] | undefined> =
      op === 'put'
        ? kv.put(key, value!).then(() => undefined)
        : op === 'delete'
          ? kv.delete(key).then((r) => ({ found: r.existed }))
          : kv.get(key).then((v) => (v === undefined ? { found: false } : { found: true, value: v }));
    request.then(
      (result) => {
        if (cl.pending !== rec) return; // the client gave up on it
        finish(cl, rec, 'ok', result);
        cl.redirects = 0;
        cl.nextAt = c.now + (clientRng.chance(0.3) ? 0 : clientRng.range(1, 2 * TICK));
      },
      (error: unknown) => {
        if (cl.pending !== rec) return;
        because((error as Error).name ?? String(error));
        if (error instanceof NotLeaderError) {
          finish(cl, rec, 'fail');
          if (cl.redirects < MAX_REDIRECTS && c.nodes.has(error.leaderUrl)) {
            // As an HTTP client follows a 307: the same request, at once, to the named leader.
            cl.redirects++;
            cl.target = error.leaderUrl;
            cl.redirect = { op, key, value };
            cl.nextAt = c.now;
          } else {
            backoff(cl, true);
          }
        } else if (
          error instanceof NoLeaderError ||
          error instanceof ProposalRejectedError ||
          error instanceof ProposalLostError ||
          error instanceof ShuttingDownError ||
          error instanceof ReadTimeoutError ||
          isStorageFull(error)
        ) {
          finish(cl, rec, 'fail');
          // A node whose disk is full refuses until space returns: another node may lead by then.
          backoff(cl, error instanceof ReadTimeoutError || isStorageFull(error));
        } else {
          // ProposalTimeoutError, or anything else (a node that stopped on a disk fault): outcome unknown.
          if (!(error instanceof ProposalTimeoutError)) otherErrors.add(String(error));
          finish(cl, rec, 'unknown');
          backoff(cl, true);
        }
      },
    );
  };

  /** Lets the answers given at this instant (and the redirects they cause) run before time moves on. */
  const drain = async (): Promise<void> => {
    for (let round = 0; round < 10; round++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const due = clients.filter((cl) => !cl.pending && cl.redirect && cl.nextAt <= c.now);
      if (due.length === 0) return;
      for (const cl of due) issue(cl);
    }
  };

  /** Clients give up on requests older than the client timeout. */
  const expire = (): void => {
    for (const cl of clients) {
      const rec = cl.pending;
      if (rec && c.now - rec.start >= CLIENT_TIMEOUT) {
        because('gave up');
        finish(cl, rec, 'unknown');
        backoff(cl, true);
      }
    }
  };

  let deposed = { until: 0, healAt: 0 };
  let calmUntil = 0;
  let stormUntil = 0;
  const injectFault = (): void => {
    if (faults === 'random') {
      // Storms of the random schedule's faults (about one draw per five ticks), each followed by a calm: the
      // network heals and a supervisor restarts the nodes that are down.
      if (c.now < calmUntil) return;
      if (stormUntil === 0) stormUntil = c.now + faultRng.range(20, 80) * TICK;
      if (c.now < stormUntil) {
        if (faultRng.chance(STEP / (5 * TICK))) chaos(c, faultRng);
        return;
      }
      c.heal();
      for (const id of c.ids) c.restart(id);
      calmUntil = c.now + faultRng.range(10, 40) * TICK;
      stormUntil = 0;
      return;
    }
    // deposed-leader: isolate the leader (with one follower in a 5-node cluster) for a while, heal, repeat.
    if (deposed.healAt > 0 && c.now >= deposed.healAt) {
      c.heal();
      deposed = { until: c.now + faultRng.range(10, 30) * TICK, healAt: 0 };
    } else if (deposed.healAt === 0 && c.now >= deposed.until) {
      const leader = c.leaders().sort((a, b) => b.term - a.term)[0];
      if (!leader) return;
      const others = faultRng.shuffle(c.ids.filter((id) => id !== leader.id));
      const minority = [leader.id, ...others.slice(0, Math.floor((c.ids.length - 1) / 2) - 1)];
      c.partition([minority, c.ids.filter((id) => !minority.includes(id))]);
      deposed = { until: 0, healAt: c.now + faultRng.range(30, 80) * TICK };
    }
  };

  const budget = options.ops ?? 150;
  const more = () => effective + clients.filter((cl) => cl.pending).length < budget && issuedCount < 4 * budget;
  try {
    // The clients and the faults, until the operation budget is spent.
    while (more()) {
      injectFault();
      expire();
      for (const cl of clients) if (!cl.pending && cl.nextAt <= c.now && more()) issue(cl);
      await drain();
      await c.runForAsync(STEP);
    }
    // Quiet: no new requests; those in flight are answered or given up on.
    while (clients.some((cl) => cl.pending)) {
      expire();
      await c.runForAsync(STEP);
    }
    // Heal, restart every node, wait until every node applied everything (and check Raft's invariants).
    c.settle();
    // Every node applied everything: their maps agree (a wrong restore from a snapshot shows here too).
    for (const key of keys) {
      const values = c.ids.map((id) => machines.get(id)?.get(key));
      if (values.some((v) => v !== values[0])) {
        throw new Error(`after settling, the nodes' values of ${key} differ: ${c.ids.map((id, k) => `${id}=${values[k]}`).join(' ')}`);
      }
    }
    // A final read of every key, so that the last writes are observed.
    for (const key of keys) {
      const cl = clients[0];
      cl.redirects = 0;
      cl.redirect = undefined;
      for (let attempt = 0; attempt < 20; attempt++) {
        issue(cl, cl.redirect ?? { op: 'get', key });
        await drain();
        while (cl.pending) {
          expire();
          await c.runForAsync(STEP);
        }
        if (history[history.length - 1].outcome === 'ok') break;
        if (!cl.redirect) await c.runForAsync(cl.nextAt - c.now);
      }
    }
  } catch (e) {
    const err = e as Error;
    throw new KvLinearizabilityError(
      `seed ${seed}: ${err.name}: ${err.message}\n  replay: ${kvReplayCommand(seed, faults)}\n  options: ${describeOptions(clusterOptions)}\n` +
        `  last events:\n    ${c.traceLines().join('\n    ')}`,
    );
  }

  const result = checkHistory(history, { timeBudgetMs: options.checkBudgetMs ?? 10_000 });
  const count = (o: HistoryOp['outcome']) => history.filter((h) => h.outcome === o).length;
  const summary: KvRunSummary = {
    seed,
    size,
    clients: clients.length,
    keys: keys.length,
    ops: history.length,
    ok: count('ok'),
    fail: count('fail'),
    unknown: count('unknown'),
    time: c.now,
    snapshots: { ...c.snapshotStats },
    verdict: result.verdict,
    checkMs: Math.round(result.elapsedMs),
    otherErrors: [...otherErrors],
    reasons,
    history,
    result,
  };
  if (result.verdict === 'violation') {
    throw new KvLinearizabilityError(
      `seed ${seed}: the client history is not linearizable (${history.length} operations, ${summary.ok} ok, ` +
        `${summary.fail} failed, ${summary.unknown} unknown)\n  replay: ${kvReplayCommand(seed, faults)}\n` +
        `  options: ${describeOptions(clusterOptions)}\n${result.violation?.explanation ?? ''}`,
      summary,
    );
  }
  return summary;
}

/**
 * The KV state machine, minus entries that are not KV commands: the simulator's own probe commands
 * (Cluster.settle proposes them through Cluster.propose, which expects each to be answered with its
 * identity, as the default state machine does). KvStateMachine would skip them, with a warning per entry.
 * Snapshots and restores are KvStateMachine's own.
 */
export function skipForeignEntries(kv: KvStateMachine): StateMachine {
  return {
    apply: (entry: Entry) => (entry.data.length > 0 && !decodeCommand(entry.data) ? entryIdent(entry) : kv.apply(entry)),
    snapshot: () => kv.snapshot(),
    restore: (chunks, done) => kv.restore(chunks, done),
  };
}

function describeOptions(o: ClusterOptions): string {
  const { stateMachine: _sm, ...rest } = o;
  return JSON.stringify(rest);
}
