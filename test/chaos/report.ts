/**
 * The report of a chaos run: report.json (everything) and report.txt (the summary printed at the end).
 * docs/chaos.md explains how to read it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeOp, HistoryOp } from '../linearizability/history';
import { CheckResult } from '../linearizability/checker';
import { Crash, JoinRefusal } from './cluster';
import { MembershipChange } from './membership';
import { CasCounts, Divergence, LostWrite, OpCounts, Value } from './checks';
import { RetryCounts, Unexpected } from './clients';
import { WatchCheck, WatchFilter, WatchFinding } from './watch-checks';
import { WatcherCounts } from './watchers';
import { formatSnapshotCounts, SnapshotCounts } from './snapshots';

export interface ChaosReport {
  verdict: 'PASS' | 'FAIL';
  problems: string[];
  seed: number;
  command?: string;
  /** Wall clock when the run started (the history's time 0 is a moment later). */
  startedAt: string;
  nodes: number;
  clients: number;
  keys: string[];
  /** What the clients did (clients.ts WORKLOAD_MIX). */
  workload: string;
  /** The compare-and-sets (the cas workload), by outcome. */
  cas: CasCounts;
  network: string;
  /** With TLS (`--tls`): the CA and the certificates; undefined: plain HTTP. */
  tls?: string;
  /** What the cuts stopped: connections silenced (proxies) or packets dropped (iptables). */
  cutTraffic?: { count: number; unit: string };
  /**
   * The code the nodes ran: a hash of the build's .js files (test/chaos/cluster.ts buildHash), when it was
   * built, HEAD when the run started and the node's source files that differed from HEAD then.
   */
  build?: { hash: string; builtAt: string; source: string; commit: string; dirty: string[] };
  faultsEnabled: string[];
  /** Wall time of the whole run and of its phases, ms. */
  timings: { totalMs: number; loadMs: number; convergeMs?: number; checkMs?: number };
  ops: OpCounts;
  /** ok operations after everything was healed: the cluster serves again. */
  okAfterHeal: number;
  faults: { rounds: number; counts: Record<string, number> };
  /** The membership nemesis's changes (what each took) and the joins the cluster refused. */
  membership?: { changes: MembershipChange[]; joinRefusals: JoinRefusal[] };
  /** Snapshots taken, installed and restored, compactions, segments left (from the node logs and data). */
  snapshots?: SnapshotCounts;
  crashes: Crash[];
  unexpected: { count: number; samples: Unexpected[] };
  /** The index every node reached, or why not; and each node's indexes at the end. */
  convergence: { commitIndex?: number; error?: string; nodes?: string[] };
  finalState: Record<string, Value>;
  divergence: Divergence[];
  lostWrites: LostWrite[];
  /** The set workload: fresh keys written once each, and how many of them hold their value at the end. */
  fresh: { keys: number; found: number };
  /** The watchers (watchers.ts): what they follow, what they did, and the watch check (watch-checks.ts). */
  watch?: {
    filters: WatchFilter[];
    counts: WatcherCounts;
    segments: number;
    check?: Omit<WatchCheck, 'findings'> & { findings: WatchFinding[]; findingCount: number };
  };
  /** The safe retries (clients.ts, retryWrites); undefined when the run had no clients. */
  retries?: RetryCounts;
  check?: {
    verdict: CheckResult['verdict'];
    checkedOps: number;
    dropped: CheckResult['dropped'];
    elapsedMs: number;
    perKey: CheckResult['perKey'];
    explanation?: string;
  };
  runDir: string;
  files: Record<string, string>;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function formatReport(r: ChaosReport): string {
  const o = r.ops;
  const kinds = Object.entries(o.byKind)
    .map(([k, c]) => `${k} ${c.ok}/${c.fail}/${c.unknown}`)
    .join(', ');
  const faultKinds = Object.entries(r.faults.counts).filter(([k]) => !k.includes(':'));
  const faultDetail = (kind: string) =>
    Object.entries(r.faults.counts)
      .filter(([k]) => k.startsWith(`${kind}:`))
      .map(([k, n]) => `${k.slice(kind.length + 1)} ${n}`)
      .join(', ');
  const lines = [
    `chaos run ${r.verdict}: ${r.nodes} nodes, ${r.clients} clients, ${r.keys.length} keys${r.workload === 'register' ? '' : `, ${r.workload} workload`}, seed ${r.seed}`,
    `  network:     ${r.network}${r.cutTraffic ? `; cuts: ${r.cutTraffic.count} ${r.cutTraffic.unit}` : ''}`,
    `  tls:         ${r.tls ?? 'off (plain HTTP)'}`,
    `  build:       ${r.build ? `${r.build.hash}, built ${r.build.builtAt}` + (r.build.commit === 'n/a' ? ` (${r.build.source})` : `; HEAD ${r.build.commit.slice(0, 12)}${r.build.dirty.length ? `; uncommitted: ${r.build.dirty.join(', ')}` : ''}`) : 'none'}`,
    `  load:        ${(r.timings.loadMs / 1000).toFixed(1)} s of faults and load; total ${(r.timings.totalMs / 1000).toFixed(1)} s`,
    `  operations:  ${o.total} (ok ${o.ok}, fail ${o.fail}, unknown ${o.unknown}); ok/fail/unknown by kind: ${kinds}; ` +
      `ok after healing: ${r.okAfterHeal}`,
    `  faults:      ${plural(r.faults.rounds, 'round')}; ` +
      (faultKinds.length === 0 ? 'none' : faultKinds.map(([k, n]) => `${k} ${n} (${faultDetail(k)})`).join(', ')),
    ...(r.workload === 'cas'
      ? [`  cas:         swapped ${r.cas.swapped}, not swapped (412) ${r.cas.notSwapped}, failed ${r.cas.fail}, unknown ${r.cas.unknown}`]
      : []),
    ...(r.membership && r.membership.changes.length > 0 ? [`  membership:  ${formatMembership(r.membership)}`] : []),
    ...(r.snapshots ? [`  snapshots:   ${formatSnapshotCounts(r.snapshots)}`] : []),
    `  crashes:     ${r.crashes.length === 0 ? 'none' : r.crashes.map((c) => `${c.node} at ${(c.at / 1000).toFixed(1)} s (code ${c.code}, signal ${c.signal})`).join('; ')}`,
    `  unexpected answers: ${r.unexpected.count}`,
    `  convergence: ${r.convergence.error ?? `every node applied up to index ${r.convergence.commitIndex}` + (r.timings.convergeMs !== undefined ? ` (${(r.timings.convergeMs / 1000).toFixed(1)} s after the clients stopped)` : '')}`,
    ...(r.convergence.error && r.convergence.nodes ? r.convergence.nodes.map((n) => `    ${n}`) : []),
    `  replicas:    ${r.divergence.length === 0 ? `all equal on ${plural(Object.keys(r.finalState).length + r.fresh.keys, 'key')}` : `${plural(r.divergence.length, 'key')} differ`}`,
    `  fresh keys:  ${r.fresh.keys} written once each, ${r.fresh.found} present at the end`,
    `  lost writes: ${r.lostWrites.length === 0 ? 'none' : `${r.lostWrites.length} keys: ${r.lostWrites.slice(0, 10).map((l) => l.key).join(', ')}`}`,
    ...(r.watch ? [`  watch:       ${formatWatch(r.watch)}`] : []),
    ...(r.retries ? [`  retries:     ${formatRetries(r.retries, r.watch?.check?.appliedTwice)}`] : []),
  ];
  if (r.check) {
    const c = r.check;
    lines.push(
      `  checker:     ${c.verdict} (${c.checkedOps} operations checked in ${(c.elapsedMs / 1000).toFixed(2)} s; ` +
        `dropped ${c.dropped.failed} failed and ${c.dropped.unknownReads} unknown reads)`,
    );
    const perKey = Object.entries(c.perKey);
    for (const [key, k] of perKey.filter(([key]) => r.keys.includes(key))) {
      lines.push(`    ${key}: ${k.verdict}, ${k.ops} ops, ${k.elapsedMs.toFixed(0)} ms, ${k.configurations} configurations${k.reason ? ` (${k.reason})` : ''}`);
    }
    const fresh = perKey.filter(([key]) => !r.keys.includes(key));
    if (fresh.length > 0) {
      const verdicts = new Map<string, number>();
      for (const [, k] of fresh) verdicts.set(k.verdict, (verdicts.get(k.verdict) ?? 0) + 1);
      lines.push(`    fresh keys: ${[...verdicts].map(([v, n]) => `${n} ${v}`).join(', ')}`);
    }
  } else {
    lines.push('  checker:     not run');
  }
  for (const p of r.problems) lines.push(`  PROBLEM: ${p}`);
  if (r.check?.explanation) lines.push('', r.check.explanation);
  const opLine = (w: HistoryOp) => `  #${w.id} client ${w.client} [${w.start}, ${w.outcome === 'unknown' ? '…' : w.end}] ${describeOp(w)}`;
  for (const l of r.lostWrites.slice(0, 20)) {
    lines.push('', `Key ${JSON.stringify(l.key)} ends ${l.final === null ? 'absent' : JSON.stringify(l.final)}` + (l.writer ? `, written by` : '.'));
    if (l.writer) lines.push(opLine(l.writer) + (l.writer.outcome === 'fail' ? '  (reported as failed)' : ''));
    lines.push(l.expected.length > 0 ? 'The last acknowledged writes were:' : 'No write to it was acknowledged.');
    for (const w of l.expected) lines.push(opLine(w));
  }
  for (const d of r.divergence.slice(0, 20)) lines.push('', `Key ${JSON.stringify(d.key)} differs: ${JSON.stringify(d.values)}`);
  for (const c of r.crashes) lines.push('', `${c.node} exited on its own (code ${c.code}, signal ${c.signal}); its last lines:`, c.tail);
  for (const u of r.unexpected.samples) {
    lines.push('', `unexpected answer to ${describeOp(u.op)}: ${u.status ?? ''} ${u.error ?? JSON.stringify(u.body)}`);
  }
  lines.push('', `run directory: ${r.runDir}`, ...Object.entries(r.files).map(([k, f]) => `  ${k}: ${f}`));
  return lines.join('\n');
}

/**
 * `3 watchers (prefix "" ×2, prefix "k"), 5210 events (1790 indexes), 41 reconnects (hop 30, ended 5, idle 6,
 * broken 0), 3 answered 410, 0 resets, 3 segments; acknowledged writes seen 1234 (6 at indexes no watcher
 * covered); no gap, duplicate or disagreement`.
 */
export function formatWatch(w: NonNullable<ChaosReport['watch']>): string {
  const c = w.counts;
  const filters = new Map<string, number>();
  for (const f of w.filters) {
    const name = 'key' in f ? `key ${JSON.stringify(f.key)}` : `prefix ${JSON.stringify(f.prefix)}`;
    filters.set(name, (filters.get(name) ?? 0) + 1);
  }
  const verdict = !w.check
    ? 'not checked'
    : w.check.findingCount === 0
      ? 'no gap, duplicate or disagreement'
      : `${plural(w.check.findingCount, 'finding')} (report.json watch.check.findings)`;
  return (
    `${plural(c.watchers, 'watcher')} (${[...filters].map(([f, n]) => (n > 1 ? `${f} ×${n}` : f)).join(', ')}), ` +
    `${c.events} events${w.check ? ` (${w.check.indexes} indexes)` : ''}, ${plural(c.reconnects, 'reconnect')} ` +
    `(hop ${c.hops}, ended by the node ${c.ended}, idle ${c.idle}, broken ${c.broken}; ${c.unavailable} attempts unanswered), ` +
    `${c.gone} answered 410, ${plural(c.resets, 'reset')}, ${plural(w.segments, 'segment')}; ` +
    (w.check ? `acknowledged writes seen ${w.check.acknowledged.checked} (${w.check.acknowledged.uncovered} at indexes no watcher covered); ` : '') +
    verdict
  );
}

/** `every write keyed; 41 retried (97 more requests): 38 settled, 3 still unknown; 12 replayed answers; applied twice: none`. */
export function formatRetries(r: RetryCounts, appliedTwice: number | undefined): string {
  if (r.keyed === 0) return 'off (writes without Idempotency-Key, never retried)';
  return (
    `${r.keyed} writes with an Idempotency-Key; ${r.retried} retried (${plural(r.attempts, 'more request')}): ${r.settled} settled, ` +
    `${r.exhausted} still unknown; ${plural(r.replayed, 'replayed answer')} (Idempotent-Replayed); applied twice: ` +
    (appliedTwice === undefined ? 'not checked (no watchers)' : appliedTwice === 0 ? 'none' : `${appliedTwice} values`)
  );
}

/**
 * `2 changes (node2 follower: out 0.1 s, exited 1.2 s, voter 6.3 s; node1 leader with isolate: ...);
 * 3 DELETE requests, 1 refusal, 2 joins`: times from the start of each change.
 */
export function formatMembership(m: NonNullable<ChaosReport['membership']>): string {
  const s = (from: number, to: number | undefined) => (to === undefined ? 'never' : `${((to - from) / 1000).toFixed(1)} s`);
  const changes = m.changes.map(
    (c) => `${c.node} ${c.target}${c.partition ? ` with ${c.partition}` : ''}: out ${s(c.startedAt, c.removedAt)}, exited ${s(c.startedAt, c.exitedAt)}, voter ${s(c.startedAt, c.voterAt)}`,
  );
  const sum = (f: (c: MembershipChange) => number) => m.changes.reduce((n, c) => n + f(c), 0);
  return (
    `${plural(m.changes.length, 'change')} (${changes.join('; ')}); ${plural(sum((c) => c.removeRequests), 'DELETE request')}, ` +
    `${plural(sum((c) => Object.values(c.retries).reduce((a, b) => a + b, 0)), 'answer')} that made it ask again, ` +
    `${plural(sum((c) => c.joinAttempts), 'join')} (${m.joinRefusals.length} refused)`
  );
}

export function writeReport(r: ChaosReport): void {
  writeFileSync(join(r.runDir, 'report.json'), JSON.stringify(r, null, 2) + '\n');
  writeFileSync(join(r.runDir, 'report.txt'), formatReport(r) + '\n');
}

/** The operations of one key around an instant: for a reader who wants to see a violation in context. */
export function excerpt(history: readonly HistoryOp[], key: string, from: number, to: number): string {
  return history
    .filter((op) => op.key === key && op.start <= to && (op.end ?? Infinity) >= from)
    .map((op) => `#${op.id} ${op.client} [${op.start}, ${op.outcome === 'unknown' ? '…' : op.end}] ${describeOp(op)}`)
    .join('\n');
}
