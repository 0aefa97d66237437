/**
 * Micro-benchmark of the Raft core: proposals per second committed through a 3-node in-memory cluster.
 * No I/O: every node "persists" into a MemoryStorage and messages are stepped directly into their
 * destination. What is measured is the core itself (propose, ready, step, advance) plus that trivial
 * driver, so the figure is an upper bound on what the core lets a node do, not a node's throughput.
 *
 *   npm run bench:core                 # the standard table
 *   npm run bench:core -- --quick      # a shorter run
 *
 * Modes:
 * - lockstep: propose a batch, then run every node until the cluster is quiet (the batch is committed
 *   and applied everywhere), then the next batch;
 * - pipelined: propose a batch, let every node handle one Ready, repeat: batches overlap in flight, as in
 *   a busy node.
 * The last columns report the rate over the first and the second half of each run, to show that nothing
 * slows down as the log grows (the log reaches 1,000,000 entries).
 */
import { MemoryStorage, MessageType, RawNode, Ready } from '@app/consensus';
import { parseCommandLine, withUsage } from '../../scripts/lib/cli';

interface BenchNode {
  id: string;
  node: RawNode;
  storage: MemoryStorage;
}

interface Result {
  mode: string;
  batch: number;
  payload: number;
  proposals: number;
  seconds: number;
  rate: number;
  firstHalf: number;
  secondHalf: number;
  msgApps: number;
}

function makeCluster(): { nodes: Map<string, BenchNode>; leader: BenchNode } {
  const ids = ['n1', 'n2', 'n3'];
  let seed = 1;
  const random = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  const nodes = new Map<string, BenchNode>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    const node = new RawNode({ id, peers: ids, storage, electionTick: 10, heartbeatTick: 1, random });
    nodes.set(id, { id, node, storage });
  }
  const leader = nodes.get('n1')!;
  leader.node.campaign();
  while (pass(nodes, () => undefined) > 0) {
    // elect and commit the no-op
  }
  return { nodes, leader };
}

/** Every node handles one Ready (persist, deliver, apply, advance). Returns how many had one. */
function pass(nodes: Map<string, BenchNode>, onApply: (id: string, rd: Ready) => void, stats?: { msgApps: number }): number {
  let busy = 0;
  for (const n of nodes.values()) {
    if (!n.node.hasReady()) continue;
    busy++;
    const rd = n.node.ready();
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    if (rd.entries.length > 0) n.storage.append(rd.entries);
    for (const m of rd.messages) {
      if (stats && m.type === MessageType.MsgApp) stats.msgApps++;
      nodes.get(m.to)!.node.step(m);
    }
    onApply(n.id, rd);
    n.node.advance();
  }
  return busy;
}

function run(mode: 'lockstep' | 'pipelined', batch: number, payload: number, proposals: number): Result {
  const { nodes, leader } = makeCluster();
  const data = new Uint8Array(payload);
  const stats = { msgApps: 0 };
  let proposed = 0;
  let committed = 0;
  let half = 0n;
  const mid = Math.floor(proposals / 2);
  const onApply = (id: string, rd: Ready): void => {
    if (id !== leader.id) return;
    for (const e of rd.committedEntries) {
      if (e.data.byteLength === 0) continue;
      committed++;
      if (committed === mid) half = process.hrtime.bigint();
    }
  };
  const t0 = process.hrtime.bigint();
  while (committed < proposals) {
    for (let i = 0; i < batch && proposed < proposals; i++, proposed++) leader.node.propose(data);
    if (mode === 'pipelined') {
      pass(nodes, onApply, stats);
    } else {
      while (pass(nodes, onApply, stats) > 0) {
        // until the batch is committed and applied everywhere
      }
    }
    if (proposed >= proposals) {
      while (pass(nodes, onApply, stats) > 0) {
        // drain
      }
    }
  }
  const t1 = process.hrtime.bigint();
  const seconds = Number(t1 - t0) / 1e9;
  return {
    mode,
    batch,
    payload,
    proposals,
    seconds,
    rate: proposals / seconds,
    firstHalf: mid / (Number(half - t0) / 1e9),
    secondHalf: (proposals - mid) / (Number(t1 - half) / 1e9),
    msgApps: stats.msgApps,
  };
}

function main(): void {
  const { values } = parseCommandLine({
    args: process.argv.slice(2),
    options: { quick: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    process.stdout.write('usage: npm run bench:core [-- --quick]\n  --quick   a shorter run (a fifth of the proposals)\n');
    return;
  }
  const quick = values.quick!;
  const scale = quick ? 0.2 : 1;
  const cases: [mode: 'lockstep' | 'pipelined', batch: number, payload: number, proposals: number][] = [
    ['lockstep', 1, 16, 50_000],
    ['lockstep', 10, 16, 200_000],
    ['lockstep', 100, 16, 1_000_000],
    ['lockstep', 1000, 16, 1_000_000],
    ['pipelined', 100, 16, 1_000_000],
    ['pipelined', 1000, 16, 1_000_000],
    ['pipelined', 100, 256, 1_000_000],
  ];
  // Warm up the JIT.
  run('pipelined', 100, 16, 100_000);
  console.log(`Raft core micro-benchmark: 3 nodes in memory, Node ${process.version}, ${new Date().toISOString()}`);
  console.log('mode       batch  payload  proposals   seconds   proposals/s   1st half/s   2nd half/s   MsgApps');
  for (const [mode, batch, payload, n] of cases) {
    const r = run(mode, batch, payload, Math.round(n * scale));
    console.log(
      `${r.mode.padEnd(10)} ${String(r.batch).padStart(5)}  ${String(r.payload).padStart(7)}  ${String(r.proposals).padStart(9)}  ` +
        `${r.seconds.toFixed(2).padStart(8)}  ${Math.round(r.rate).toLocaleString('en-US').padStart(12)}  ` +
        `${Math.round(r.firstHalf).toLocaleString('en-US').padStart(11)}  ${Math.round(r.secondHalf).toLocaleString('en-US').padStart(11)}  ` +
        `${String(r.msgApps).padStart(8)}`,
    );
  }
}

void withUsage('bench:core', main);
