/**
 * Trace tests in the style of etcd-io/raft's interaction tests: each file in testdata/ is a scenario
 * script (starting with a comment that states it) whose commands drive a few RawNodes by hand, and whose
 * expected output is the trace of what the nodes did (Readies, messages). A change of behaviour shows up
 * as a readable diff. Regenerate the expected output after an intended change with
 * `REWRITE=1 npx jest libs/consensus/src/core/interaction.spec.ts`, then review the diff.
 *
 * Script format: blocks separated by blank lines; `#` lines are comments; a block is a command line,
 * a line `----`, then the expected output.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeConfChange, describeConfChange } from './confchange';
import { MemoryStorage } from './memory-storage';
import { RawNode } from './raw-node';
import { ConfChangeType, ConfState, Entry, EntryType, Message, MessageType, Ready, Snapshot } from './types';

const DIR = join(__dirname, 'testdata');

interface Env {
  /** `peers`: the bootstrap voters it starts with (empty for a joining node). */
  nodes: Map<string, { raw: RawNode | undefined; storage: MemoryStorage; opts: Record<string, string>; peers: string[] }>;
  inbox: Map<string, Message[]>;
  cut: Set<string>;
}

function fmtEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) return `${e.term}/${e.index} ConfChange ${describeConfChange(decodeConfChange(e.data))}`;
  const data = new TextDecoder().decode(e.data);
  return data.length > 0 ? `${e.term}/${e.index} ${JSON.stringify(data)}` : `${e.term}/${e.index} (no-op)`;
}

function fmtMsg(m: Message): string {
  const parts = [`${m.from}->${m.to} ${MessageType[m.type]} Term:${m.term}`];
  if (m.type === MessageType.MsgApp || m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
    parts.push(`Log:${m.logTerm}/${m.index}`);
  }
  if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat) parts.push(`Commit:${m.commit}`);
  if (m.type === MessageType.MsgAppResp || m.type === MessageType.MsgReadIndexResp) parts.push(`Index:${m.index}`);
  if (m.snapshot) parts.push(`Snapshot:${fmtSnapshot(m.snapshot)}`);
  if (m.reject) parts.push(`Rejected (Hint: ${m.rejectHint}, Term: ${m.logTerm})`);
  if (m.entries && m.entries.length > 0) parts.push(`Entries:[${m.entries.map(fmtEntry).join(', ')}]`);
  if (m.context !== undefined) parts.push(`Context:${JSON.stringify(m.context.replace('\u0000', '/'))}`);
  return parts.join(' ');
}

function fmtSnapshot(s: Snapshot): string {
  const m = s.metadata;
  return `${m.term}/${m.index} ${fmtConf(m.confState)} ${JSON.stringify(new TextDecoder().decode(s.data))}`;
}

function fmtConf(cs: ConfState): string {
  return `Voters:[${cs.voters.join(',')}]${cs.learners?.length ? ` Learners:[${cs.learners.join(',')}]` : ''}`;
}

function fmtReady(id: string, rd: Ready): string[] {
  const out = [`> ${id} handling Ready`];
  if (rd.softState) out.push(`  Lead:${rd.softState.lead || 'none'} State:${rd.softState.raftState}`);
  if (rd.hardState) out.push(`  HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote || 'none'} Commit:${rd.hardState.commit}`);
  if (rd.snapshot) out.push(`  Snapshot:${fmtSnapshot(rd.snapshot)}`);
  if (rd.entries.length > 0) out.push(`  Entries:`, ...rd.entries.map((e) => `    ${fmtEntry(e)}`));
  if (rd.committedEntries.length > 0) out.push(`  CommittedEntries:`, ...rd.committedEntries.map((e) => `    ${fmtEntry(e)}`));
  if (rd.messages.length > 0) out.push(`  Messages:`, ...rd.messages.map((m) => `    ${fmtMsg(m)}`));
  if (rd.readStates.length > 0) out.push(`  ReadStates:`, ...rd.readStates.map((r) => `    index:${r.index} ctx:${r.requestCtx}`));
  return out;
}

function n0(env: Env, id: string): Env['nodes'] extends Map<string, infer V> ? V : never {
  return env.nodes.get(id)!;
}

function start(env: Env, id: string): void {
  const n = env.nodes.get(id)!;
  const o = n.opts;
  // A generator that always returns 0: election timeouts are exactly electionTick, traces are stable.
  n.raw = new RawNode({
    id,
    peers: n.peers,
    storage: n.storage,
    electionTick: 10,
    heartbeatTick: 1,
    preVote: o.preVote !== 'false',
    checkQuorum: o.checkQuorum !== 'false',
    maxEntriesPerMsg: o.maxEntriesPerMsg ? Number(o.maxEntriesPerMsg) : undefined,
    random: () => 0,
  });
}

function processReady(env: Env, id: string, out: string[]): boolean {
  const n = env.nodes.get(id)!;
  if (!n.raw || !n.raw.hasReady()) return false;
  const rd = n.raw.ready();
  out.push(...fmtReady(id, rd));
  if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
  if (rd.hardState) n.storage.setHardState(rd.hardState);
  n.storage.append(rd.entries);
  for (const m of rd.messages) {
    if (env.cut.has(m.from) || env.cut.has(m.to)) continue;
    env.inbox.set(m.to, [...(env.inbox.get(m.to) ?? []), m]);
  }
  // The driver applies ConfChange entries as it meets them among the committed entries.
  for (const e of rd.committedEntries) {
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decodeConfChange(e.data);
    out.push(`  Applied ${describeConfChange(cc)}: ${fmtConf(n.raw.applyConfChange(cc))}`);
  }
  n.raw.advance();
  return true;
}

function deliver(env: Env, id: string, out: string[]): boolean {
  const msgs = env.inbox.get(id) ?? [];
  if (msgs.length === 0) return false;
  env.inbox.set(id, []);
  const n = env.nodes.get(id)!;
  for (const m of msgs) {
    out.push(`> ${id} receiving ${fmtMsg(m)}`);
    n.raw?.step(m);
  }
  return true;
}

function run(env: Env, line: string): string[] {
  const [cmd, ...args] = line.trim().split(/\s+/);
  const kv = Object.fromEntries(args.filter((a) => a.includes('=')).map((a) => a.split('=') as [string, string]));
  const ids = args.filter((a) => !a.includes('='));
  const all = ids.length > 0 ? ids : [...env.nodes.keys()];
  const out: string[] = [];
  const node = (id: string): RawNode => env.nodes.get(id)!.raw!;
  switch (cmd) {
    case 'add-nodes': {
      const peers = Array.from({ length: Number(ids[0]) }, (_, i) => String(i + 1));
      for (const id of peers) env.nodes.set(id, { raw: undefined, storage: new MemoryStorage(), opts: kv, peers });
      for (const id of env.nodes.keys()) start(env, id);
      out.push(`${ids[0]} nodes, ${Object.entries(kv).map(([k, v]) => `${k}=${v}`).join(' ') || 'defaults'}`);
      break;
    }
    case 'add-joining-node':
      // Empty peers: a node joining a running cluster, which knows no configuration until contacted.
      env.nodes.set(ids[0], { raw: undefined, storage: new MemoryStorage(), opts: kv, peers: [] });
      start(env, ids[0]);
      out.push(`node ${ids[0]} joining, ${fmtConf(node(ids[0]).confState())}`);
      break;
    case 'propose-conf-change': {
      // propose-conf-change <leader> <AddNode|AddLearnerNode|RemoveNode> <id>
      const type = ConfChangeType[ids[1] as keyof typeof ConfChangeType];
      if (type === undefined) throw new Error(`unknown ConfChange type: ${line}`);
      try {
        const at = node(ids[0]).proposeConfChange({ type, nodeId: ids[2] });
        out.push(`index ${at.index} term ${at.term}`);
      } catch (e) {
        out.push(`refused: ${(e as Error).message}`);
      }
      break;
    }
    case 'campaign':
      node(ids[0]).campaign();
      out.push('ok');
      break;
    case 'propose': {
      const at = node(ids[0]).propose(new TextEncoder().encode(ids[1]));
      out.push(`index ${at.index} term ${at.term}`);
      break;
    }
    case 'propose-many': {
      for (let i = 0; i < Number(ids[1]); i++) node(ids[0]).propose(new TextEncoder().encode(`v${i}`));
      out.push(`${ids[1]} proposals`);
      break;
    }
    case 'read-index':
      node(ids[0]).readIndex(ids[1]);
      out.push('ok');
      break;
    case 'transfer-leadership':
      node(ids[0]).transferLeadership(ids[1]);
      out.push('ok');
      break;
    case 'tick':
      for (let i = 0; i < Number(kv.n ?? 1); i++) for (const id of all) node(id).tick();
      out.push('ok');
      break;
    case 'isolate':
      ids.forEach((id) => env.cut.add(id));
      for (const id of ids) env.inbox.set(id, []);
      out.push('ok');
      break;
    case 'recover':
      env.cut.clear();
      out.push('ok');
      break;
    case 'crash':
      for (const id of ids) {
        env.nodes.get(id)!.raw = undefined;
        env.inbox.set(id, []);
      }
      out.push('ok');
      break;
    case 'restart':
      for (const id of ids) start(env, id);
      out.push('ok');
      break;
    case 'process-ready':
      for (const id of all) processReady(env, id, out);
      break;
    case 'deliver-msgs':
      for (const id of all) deliver(env, id, out);
      break;
    case 'stabilize': {
      for (let round = 0; round < 100; round++) {
        let busy = false;
        for (const id of all) busy = processReady(env, id, out) || busy;
        for (const id of all) busy = deliver(env, id, out) || busy;
        if (!busy) break;
      }
      break;
    }
    case 'compact': {
      // The node snapshots what it applied (the snapshot's data names it) and releases its log up to there.
      const applied = node(ids[0]).status().applied;
      n0(env, ids[0]).storage.createSnapshot(applied, node(ids[0]).confState(), new TextEncoder().encode(`state@${applied}`));
      n0(env, ids[0]).storage.compact(applied);
      out.push(`snapshot and compaction at ${applied}`);
      break;
    }
    case 'take-snapshot': {
      // The driver snapshots what it applied and keeps its log (no compaction).
      const applied = node(ids[0]).status().applied;
      n0(env, ids[0]).storage.createSnapshot(applied, node(ids[0]).confState(), new TextEncoder().encode(`state@${applied}`));
      out.push(`snapshot at ${applied}`);
      break;
    }
    case 'report-snapshot':
      node(ids[0]).reportSnapshot(ids[1], kv.failed === 'true');
      out.push('ok');
      break;
    case 'progress':
      for (const [id, p] of Object.entries(node(ids[0]).status().progress)) {
        const extra = `${p.pendingSnapshot ? ` pendingSnapshot:${p.pendingSnapshot}` : ''}${p.isLearner ? ' learner' : ''}`;
        out.push(`${id}: ${p.state} match:${p.match} next:${p.next}${extra}`);
      }
      break;
    case 'status':
      for (const id of all) {
        const s = env.nodes.get(id)!.raw?.status();
        if (!s) out.push(`${id}: down`);
        else out.push(`${id}: ${s.raftState} term:${s.term} lead:${s.lead || 'none'} commit:${s.commit} applied:${s.applied} last:${s.lastIndex}`);
      }
      break;
    case 'conf-state':
      for (const id of all) out.push(`${id}: ${fmtConf(node(id).confState())}`);
      break;
    case 'raft-log':
      for (const id of all) {
        const s = env.nodes.get(id)!.storage;
        const es = s.lastIndex() >= s.firstIndex() ? s.entries(s.firstIndex(), s.lastIndex() + 1) : [];
        const snap = s.snapshot().metadata;
        const head = s.firstIndex() > 1 ? `[snapshot ${snap.term}/${snap.index}, compacted to ${s.firstIndex() - 1}] ` : '';
        out.push(`${id}: ${head}${es.map(fmtEntry).join(', ') || '(empty)'}`);
      }
      break;
    default:
      throw new Error(`unknown command: ${line}`);
  }
  return out.length > 0 ? out : ['ok'];
}

interface Block {
  comments: string[];
  command: string;
  expected: string;
}

function parse(text: string): Block[] {
  const blocks: Block[] = [];
  for (const chunk of text.split(/\n\s*\n/)) {
    const lines = chunk.split('\n');
    const comments = lines.filter((l) => l.startsWith('#'));
    const rest = lines.filter((l) => !l.startsWith('#'));
    const sep = rest.indexOf('----');
    if (sep < 0) {
      if (rest.some((l) => l.trim() !== '')) throw new Error(`block without ----: ${chunk}`);
      if (comments.length > 0) blocks.push({ comments, command: '', expected: '' });
      continue;
    }
    blocks.push({ comments, command: rest.slice(0, sep).join(' ').trim(), expected: rest.slice(sep + 1).join('\n').trimEnd() });
  }
  return blocks;
}

function render(blocks: Block[]): string {
  return (
    blocks
      .map((b) => [...b.comments, ...(b.command ? [b.command, '----', b.expected] : [])].join('\n'))
      .join('\n\n') + '\n'
  );
}

describe('interaction traces (testdata/*.txt)', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.txt'));
  it.each(files)('%s', (file) => {
    const path = join(DIR, file);
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith('#')).toBe(true); // each scenario states what it is about
    const blocks = parse(text);
    const env: Env = { nodes: new Map(), inbox: new Map(), cut: new Set() };
    const actual = blocks.map((b) => ({ ...b, expected: b.command ? run(env, b.command).join('\n') : '' }));
    if (process.env.REWRITE) {
      writeFileSync(path, render(actual));
      return;
    }
    for (let i = 0; i < blocks.length; i++) {
      expect(`${blocks[i].command}\n${actual[i].expected}`).toBe(`${blocks[i].command}\n${blocks[i].expected}`);
    }
  });
});
