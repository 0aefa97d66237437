/**
 * The mutation catalogue: each rule of docs/consensus.md and docs/chaos.md broken on purpose, as an exact
 * edit of one file, with the command(s) expected to kill it. `npm run mutants` (scripts/mutants.ts) applies
 * each one to a throwaway copy of the repository and runs its commands there.
 *
 * Contract of an entry: every `search` string occurs exactly once in `file` (after the edits before it are
 * applied); the script refuses to run a mutant otherwise, so a refactoring that moves the code makes the
 * catalogue fail loudly instead of testing nothing. `kill` commands run in order, in the copy, until one
 * fails (the mutant is killed) or all pass (it survived).
 */

export type Suite = 'unit' | 'sim' | 'chaos';

export interface Edit {
  search: string;
  replace: string;
}

export interface Mutant {
  id: string;
  /** The rule it breaks, worded as in the docs. */
  rule: string;
  suite: Suite;
  /** Repository-relative path of the file the edits apply to. */
  file: string;
  edits: Edit[];
  /** Shell commands run from the copy's root, in order, until one fails. */
  kill: string[];
  /**
   * 'survive' marks an equivalent mutant: a change the docs claim is harmless, kept to show that the
   * suite does not flag it. Default 'kill'.
   */
  expect?: 'kill' | 'survive';
}

const RAFT = 'libs/consensus/src/core/raft.ts';
const RAFT_LOG = 'libs/consensus/src/core/raft-log.ts';
const RAW_NODE = 'libs/consensus/src/core/raw-node.ts';
const UNSTABLE = 'libs/consensus/src/core/unstable.ts';
const READY_LOOP = 'libs/consensus/src/ready-loop.ts';
const TRACKER = 'libs/consensus/src/proposal-tracker.ts';
const BATCHER = 'libs/consensus/src/read-batcher.ts';
const REQUESTS = 'libs/consensus/src/requests.ts';

/** The core's unit tests (raft, raw-node, raft-log, unstable, interaction traces, ...): about 10 s. */
const CORE_UNIT = 'npx jest libs/consensus/src/core --selectProjects unit';
/** 500 random schedules of the simulated cluster running the production node loop: a few seconds. */
const SIM_500 = 'npm run test:sim -- --seeds 500';
// 150 s, not 60: on 2026-12-01 `chaos-waiter-ignores-term` survived a 60 s run (seed 77, 8 rounds of faults)
// and was killed by this one (a lost write). Real processes: a seed does not replay a run exactly.
const CHAOS = 'npm run build && npm run chaos -- --duration 150 --nodes 5 --seed 78 --build dist/apps/kv-node';

/**
 * The watch mutants show at the first resume (the watchers resume every few seconds): 30 s on 3 nodes, measured
 * in docs/chaos.md ("The watch check and the apply-once check").
 */
const CHAOS_WATCH = 'npm run build && npm run chaos -- --duration 30 --nodes 3 --seed 101 --build dist/apps/kv-node';
/** A double apply needs a retry of a write that commits anyway: kills and pauses make those. */
const CHAOS_RETRIES = 'npm run build && npm run chaos -- --duration 60 --nodes 3 --seed 202 --faults kill,pause --build dist/apps/kv-node';

const one = (search: string, replace: string): Edit[] => [{ search, replace }];

/** Mutants of the pure core: the Mutations table of docs/consensus.md. */
const core: Mutant[] = [
  {
    id: 'commit-old-term',
    rule: 'commit an older-term entry by counting replicas (Figure 8)',
    suite: 'unit',
    file: RAFT_LOG,
    edits: one('this.termOrZero(maxIndex) === term) {', 'this.termOrZero(maxIndex) <= term) {'),
    kill: [CORE_UNIT],
  },
  {
    id: 'vote-without-up-to-date-check',
    rule: 'grant a vote without the up-to-date log check (§5.4.1)',
    suite: 'unit',
    file: RAFT,
    edits: one('if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {', 'if (canVote) {'),
    kill: [CORE_UNIT],
  },
  {
    id: 'vote-not-in-hard-state',
    rule: 'a vote change produces no hard state (vote not persisted)',
    suite: 'unit',
    file: RAW_NODE,
    edits: one(
      'if (r.term !== prev.term || r.vote !== prev.vote || log.committed !== prev.commit) {',
      'if (r.term !== prev.term || log.committed !== prev.commit) {',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'vote-needs-no-fsync',
    rule: 'a vote change needs no fsync (mustSync ignores the vote)',
    suite: 'unit',
    file: RAW_NODE,
    edits: one('rd.mustSync = r.term !== prev.term || r.vote !== prev.vote;', 'rd.mustSync = r.term !== prev.term;'),
    kill: [CORE_UNIT],
  },
  {
    id: 'entries-need-no-fsync',
    rule: 'new entries need no fsync (mustSync ignores entries)',
    suite: 'unit',
    file: RAW_NODE,
    edits: one('if (entries.length > 0) rd.mustSync = true;', ''),
    kill: [CORE_UNIT],
  },
  {
    id: 'read-index-without-own-term-commit',
    rule: 'ReadIndex without waiting for an own-term commit',
    suite: 'unit',
    file: RAFT,
    edits: one('    if (!this.committedEntryInCurrentTerm()) {\n', '    if (false) {\n'),
    kill: [CORE_UNIT],
  },
  {
    id: 'read-index-without-heartbeat-quorum',
    rule: 'ReadIndex without the heartbeat quorum',
    suite: 'unit',
    file: RAFT,
    edits: one('if (this.trk.config.voteResult(acks) === VoteResult.VoteWon) {', 'if (true) {'),
    kill: [CORE_UNIT],
  },
  {
    id: 'check-quorum-never-steps-down',
    rule: 'check-quorum never steps down',
    suite: 'unit',
    file: RAFT,
    edits: one('if (!this.trk.quorumActive(this.id)) {', 'if (false) {'),
    kill: [CORE_UNIT],
  },
  {
    id: 'pre-vote-raises-receiver-term',
    rule: "a pre-vote raises the receiver's term",
    suite: 'unit',
    file: RAFT,
    edits: one(
      '      if (m.type === MessageType.MsgPreVote) {\n        // Never change our term in response to a pre-vote.\n      } else if',
      '      if (false) {\n      } else if',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'pre-candidate-raises-own-term',
    rule: 'a pre-candidate raises its own term',
    suite: 'unit',
    file: RAFT,
    edits: one(
      '    // Neither the term nor the vote changes: a pre-vote round leaves no trace if it fails.\n',
      '    this.term++;\n',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'vote-inside-lease',
    rule: 'vote requests of higher terms honoured inside the lease',
    suite: 'unit',
    file: RAFT,
    edits: one('if (!force && inLease) {', 'if (false) {'),
    kill: [CORE_UNIT],
  },
  {
    id: 'vote-twice',
    rule: 'vote twice in a term',
    suite: 'unit',
    file: RAFT,
    edits: one('      this.vote === m.from ||\n', '      true ||\n'),
    kill: [CORE_UNIT],
  },
  {
    id: 'stale-vote-response-counted',
    rule: 'vote responses of an earlier election counted',
    suite: 'unit',
    file: RAFT,
    edits: one(
      '      }\n      return;\n    }\n\n    if (m.type === MessageType.MsgVote',
      '      }\n      if (m.type !== MessageType.MsgVoteResp) return;\n    }\n\n    if (m.type === MessageType.MsgVote',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'stale-msgapp-processed',
    rule: 'a stale-term MsgApp processed',
    suite: 'unit',
    file: RAFT,
    edits: one(
      '      }\n      return;\n    }\n\n    if (m.type === MessageType.MsgVote',
      '      }\n      if (m.type !== MessageType.MsgApp) return;\n    }\n\n    if (m.type === MessageType.MsgVote',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'leader-counts-itself-before-persisting',
    rule: 'the leader counts itself before persisting',
    suite: 'unit',
    file: RAFT,
    edits: one(
      '    this.raftLog.unstable.truncateAndAppend([e]);\n',
      '    this.raftLog.unstable.truncateAndAppend([e]);\n    this.trk.progress.get(this.id)?.maybeUpdate(e.index);\n',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'follower-acks-whole-log',
    rule: 'follower acknowledges its whole log, not what matched',
    suite: 'unit',
    file: RAFT,
    edits: one('      r.index = lastNew;\n', '      r.index = log.lastIndex();\n'),
    kill: [CORE_UNIT],
  },
  {
    id: 'follower-commits-beyond-msgapp',
    rule: 'follower commits beyond the last entry the MsgApp vouches for',
    suite: 'unit',
    file: RAFT_LOG,
    edits: one('this.commitTo(Math.min(committed, lastNew));', 'this.commitTo(Math.min(committed, this.lastIndex()));'),
    kill: [CORE_UNIT],
  },
  {
    id: 'follower-never-truncates',
    rule: 'follower never truncates a conflicting suffix',
    suite: 'unit',
    file: RAFT_LOG,
    edits: one(
      '      this.append(ents.slice(ci - (index + 1)));',
      '      if (ci > this.lastIndex()) this.append(ents.slice(ci - (index + 1)));',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'follower-skips-previous-entry-check',
    rule: 'follower skips the previous-entry check',
    suite: 'unit',
    file: RAFT_LOG,
    edits: one('if (!this.matchTerm(index, logTerm)) return undefined;', 'if (index > this.lastIndex()) return undefined;'),
    kill: [CORE_UNIT],
  },
  {
    id: 'heartbeat-commit-not-capped',
    rule: "heartbeat commit not capped at the follower's match",
    suite: 'unit',
    file: RAFT,
    edits: one('const commit = Math.min(pr.match, this.raftLog.committed);', 'const commit = this.raftLog.committed;'),
    // No unit test of the core sees this one (nor agreement.spec): the simulator does, at once (a follower
    // asked to commit beyond its log stops the node).
    kill: [CORE_UNIT, SIM_500],
  },
  {
    id: 'overwritten-entries-stable',
    rule: 'entries overwritten before advance() counted as persisted',
    suite: 'unit',
    file: UNSTABLE,
    edits: one('if (t === undefined || index < this.offset || t !== term) return;', 'if (t === undefined || index < this.offset) return;'),
    kill: [CORE_UNIT],
  },
  {
    id: 'no-noop',
    rule: 'no no-op at the start of a term',
    suite: 'unit',
    file: RAFT,
    edits: one(
      '    this.appendEntry({ term: this.term, index: this.raftLog.lastIndex() + 1, type: EntryType.Normal, data: EMPTY });\n',
      '',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'no-randomized-timeout',
    rule: 'no randomized election timeout',
    suite: 'unit',
    file: RAFT,
    edits: one(
      'this.randomizedElectionTimeout = e + Math.floor(this.cfg.random() * e);',
      'this.randomizedElectionTimeout = e + 0 * Math.floor(this.cfg.random() * e);',
    ),
    kill: [CORE_UNIT],
  },
  {
    id: 'no-fast-backtracking',
    rule: 'fast backtracking off (one entry per round trip)',
    suite: 'unit',
    file: RAFT,
    edits: one('      let nextProbeIdx = m.rejectHint;\n      if (m.logTerm > 0) {', '      let nextProbeIdx = m.index - 1;\n      if (false) {'),
    kill: [CORE_UNIT],
  },
  {
    id: 'timeout-now-before-caught-up',
    rule: 'TimeoutNow before the target caught up',
    suite: 'unit',
    file: RAFT,
    edits: one('    if (pr.match === this.raftLog.lastIndex()) {\n      this.sendTimeoutNow(to);', '    if (true) {\n      this.sendTimeoutNow(to);'),
    kill: [CORE_UNIT],
  },
  {
    id: 'proposals-during-transfer',
    rule: 'proposals accepted during a transfer',
    suite: 'unit',
    file: RAFT,
    edits: one('    if (this.leadTransferee !== None) {\n      throw new ProposalDroppedError', '    if (false) {\n      throw new ProposalDroppedError'),
    kill: [CORE_UNIT],
  },
  {
    id: 'proposals-not-coalesced',
    rule: 'proposals not coalesced (a MsgApp per proposal)',
    suite: 'unit',
    file: RAFT,
    edits: one('    return { index: e.index, term: e.term };\n', '    this.flush();\n    return { index: e.index, term: e.term };\n'),
    kill: [CORE_UNIT],
  },
];

/**
 * Mutants of the production node loop (ReadyLoop, RaftNode, ProposalTracker, ReadBatcher): the simulator
 * runs this very code, so a random schedule must catch each within seconds.
 */
const loop: Mutant[] = [
  {
    id: 'loop-apply-before-persist',
    rule: 'apply before persist: committed entries handed to the state machine before the save completes',
    suite: 'sim',
    file: READY_LOOP,
    edits: [
      {
        search: '        if (rd.committedEntries.length > 0) this.handler.apply(rd.committedEntries);\n        if (rd.readStates',
        replace: '        if (rd.readStates',
      },
      {
        search: '    if (early.length > 0) this.handler.send(early);\n',
        replace: '    if (early.length > 0) this.handler.send(early);\n    if (rd.committedEntries.length > 0) this.handler.apply(rd.committedEntries);\n',
      },
    ],
    kill: [SIM_500],
  },
  {
    id: 'loop-answer-write-at-append',
    rule: 'answer a write before its entry is committed (the tracker resolves a proposal when it is appended)',
    suite: 'sim',
    file: TRACKER,
    edits: one(
      '    const p: Pending = { term, started: now, deadline: now + this.timeoutMs, waiter };\n',
      '    const p: Pending = { term, started: now, deadline: now + this.timeoutMs, waiter };\n    waiter.resolve({ index, result: undefined });\n    return;\n',
    ),
    // Every seed fails at the first acknowledgement ("answered, but another entry was applied"): a few are
    // enough.
    kill: ['npm run test:sim -- --seeds 20'],
  },
  {
    id: 'loop-answer-write-next-turn',
    rule: 'answer a write before its entry is committed (the node resolves a proposal when it is appended, on the next turn)',
    suite: 'sim',
    file: REQUESTS,
    edits: one(
      '    this.proposals.track(at.index, at.term, this.deps.clock.now(), waiter);\n',
      '    this.deps.clock.defer(() => waiter.resolve({ index: at.index, result: undefined }));\n',
    ),
    kill: [SIM_500],
  },
  {
    id: 'loop-send-all-before-persist',
    rule: "send a follower's vote (every message) before its hard state is durable",
    suite: 'sim',
    file: READY_LOOP,
    edits: one(
      'for (const m of rd.messages) (canSendBeforePersist(m) && !rd.commitsConfChange ? early : late).push(m);',
      'for (const m of rd.messages) ((canSendBeforePersist(m) && !rd.commitsConfChange) || true ? early : late).push(m);',
    ),
    kill: [SIM_500],
  },
  {
    id: 'loop-save-forgets-hard-state',
    rule: 'a save with entries forgets the hard state (undefined instead of rd.hardState)',
    suite: 'sim',
    file: READY_LOOP,
    edits: one(
      'const hardState = rd.hardState ?? this.unsavedHardState;',
      'const hardState = rd.entries.length > 0 ? undefined : (rd.hardState ?? this.unsavedHardState);',
    ),
    // The simulator checks at every completed save that the durable term covers the saved entries' terms;
    // the loop's unit spec also checks what each save carries.
    kill: [SIM_500, 'npx jest libs/consensus/src/ready-loop.spec.ts --selectProjects unit'],
  },
  {
    id: 'loop-commit-only-hard-state-never-saved',
    rule: 'a commit-only hard state dropped and never saved (harmless: the commit index is learned again from a quorum)',
    suite: 'sim',
    file: READY_LOOP,
    edits: one('      if (rd.hardState) this.unsavedHardState = rd.hardState;\n', ''),
    kill: [SIM_500],
    expect: 'survive',
  },
  {
    id: 'loop-advance-before-save',
    rule: 'advance() before the save completes',
    suite: 'sim',
    file: READY_LOOP,
    edits: [
      { search: '        this.node.advance();\n', replace: '        if (!rd.mustSync) this.node.advance();\n' },
      { search: '    this.saving = true;\n', replace: '    this.node.advance();\n    this.saving = true;\n' },
    ],
    kill: [SIM_500],
  },
  {
    id: 'loop-read-before-applied',
    rule: 'answer a read before the applied index reaches the read index',
    suite: 'sim',
    file: BATCHER,
    edits: one('    this.applied(applied, now);\n', '    this.applied(Number.MAX_SAFE_INTEGER, now);\n'),
    kill: [SIM_500],
  },
  {
    id: 'loop-proposal-ignores-term',
    rule: "a proposal answered as committed when another term's entry landed at its index",
    suite: 'sim',
    file: TRACKER,
    edits: one('      if (p.term === entry.term) {', '      if (true) {'),
    kill: [SIM_500],
  },
];

/** The mutants docs/chaos.md shows the fault-injection suite finding. Slow: a build and a 60 s run each. */
const chaos: Mutant[] = [
  {
    id: 'chaos-find-conflict-misses',
    rule: 'core: `findConflict` misses conflicting entries',
    suite: 'chaos',
    file: RAFT_LOG,
    edits: one('if (!this.matchTerm(e.index, e.term)) return e.index;', 'if (e.index > this.lastIndex()) return e.index;'),
    kill: [CHAOS],
  },
  {
    id: 'chaos-waiter-ignores-term',
    rule: 'driver: a waiter is answered "ok" whatever the term of the entry applied at its index',
    suite: 'chaos',
    file: TRACKER,
    edits: one('      if (p.term === entry.term) {', '      if (true) {'),
    kill: [CHAOS],
  },
  {
    id: 'chaos-read-skips-read-index',
    rule: 'driver: linearizable reads skip ReadIndex (serve the local state on a leader that may be deposed)',
    suite: 'chaos',
    file: 'libs/kv/src/kv.service.ts',
    edits: one(
      "if (consistency === 'linearizable') await this.raft.readBarrier({ onFollower: true });",
      "if (consistency === 'linearizable' && !this.raft.isLeader) await this.raft.readBarrier({ onFollower: true });",
    ),
    kill: [CHAOS],
  },
  {
    id: 'chaos-cas-ignores-condition',
    rule: 'KV: a conditional write (If-Match / If-None-Match) is applied whether or not its condition holds',
    suite: 'chaos',
    file: 'libs/kv/src/kv-state-machine.ts',
    edits: one(
      'if (command.condition && !holds(command.condition, previous)) {',
      'if (command.condition && !holds(command.condition, previous) && false) {',
    ),
    // The cas workload (docs/chaos.md): a create-if-absent applied over an acknowledged put, seen by later reads.
    kill: ['npm run build && npm run chaos -- --workload cas --duration 60 --seed 3747090620 --build dist/apps/kv-node'],
  },
  {
    id: 'chaos-timeout-answers-failed',
    rule: 'KV: a timed-out write answers `outcome: "failed"` instead of `"unknown"`',
    suite: 'chaos',
    file: 'libs/kv/src/kv-errors.filter.ts',
    edits: one("outcome: 'unknown',", "outcome: 'failed',"),
    kill: [CHAOS],
  },
  {
    id: 'chaos-watch-resume-skips-one',
    rule: 'KV watch: a watch that starts or resumes behind the applied index skips the first change it should replay',
    suite: 'chaos',
    file: 'libs/kv/src/watch/watch-hub.ts',
    edits: one('for (let position = this.history.positionOf(watcher.cursor); ; position++) {', 'for (let position = this.history.positionOf(watcher.cursor) + 1; ; position++) {'),
    // The watchers resume on another node every few seconds (docs/chaos.md, "Watchers"): a gap at once.
    kill: [CHAOS_WATCH],
  },
  {
    id: 'chaos-watch-resume-repeats-last',
    rule: 'KV watch: `Last-Event-ID: n` resumes at n instead of n + 1 (the last change seen is delivered again)',
    suite: 'chaos',
    file: 'libs/kv/src/watch/sse.ts',
    edits: one('return Number(text) + 1;', 'return Number(text);'),
    kill: [CHAOS_WATCH],
  },
  {
    id: 'chaos-idempotency-ignored-at-apply',
    rule: 'KV: the state machine ignores the Idempotency-Key table at apply (a retry proposed before the first attempt applied is applied again)',
    suite: 'chaos',
    file: 'libs/kv/src/kv-state-machine.ts',
    edits: one('const seen = this.idempotency.lookup(token.token);', 'const seen = Math.random() < 0 ? this.idempotency.lookup(token.token) : undefined;'),
    kill: [CHAOS_RETRIES],
  },
  {
    id: 'chaos-idempotency-window-inverted',
    rule: 'KV: the Idempotency-Key table forgets every token at once (its window check inverted): every retry is applied again',
    suite: 'chaos',
    file: 'libs/kv/src/idempotency-table.ts',
    edits: one('record.at > this.now - this.limits.windowMs ? record : undefined', 'record.at > this.now + this.limits.windowMs ? record : undefined'),
    kill: [CHAOS_RETRIES],
  },
];

export const CATALOGUE: readonly Mutant[] = [...core, ...loop, ...chaos];
