/**
 * Log compaction and InstallSnapshot (§7 and Figure 13 of the paper), with the flow control of
 * etcd-io/raft: a leader that compacted the entries a follower needs sends it a snapshot and waits in
 * Snapshot state; a follower installs a snapshot, fast-forwards to it, or ignores it.
 */
import { MemoryStorage } from './memory-storage';
import { CampaignType, Raft } from './raft';
import { CompactedError } from './storage';
import { ents, it2, msg, newRaft, takeMsgs } from '../../../../test/support/raft-test-util';
import { Message, MessageType as T, None, NodeId, Snapshot, StateType } from './types';


/** The strict driver: the snapshot and the entries waiting in the unstable tail become durable. */
function persist(r: Raft): void {
  const log = r.raftLog;
  const snap = log.unstable.nextSnapshot();
  const es = log.nextUnstableEnts();
  log.unstable.acceptInProgress();
  const s = log.storage as MemoryStorage;
  if (snap) {
    s.applySnapshot(snap);
    log.unstable.stableSnapTo(snap.metadata.index);
    log.appliedTo(snap.metadata.index);
  }
  if (es.length === 0) return;
  s.append(es);
  const last = es[es.length - 1];
  log.unstable.stableTo(last.index, last.term);
  r.onPersisted();
}

function snapshot(index: number, term: number, voters: NodeId[] = ['1', '2', '3']): Snapshot {
  return { metadata: { index, term, confState: { voters } }, data: new TextEncoder().encode(`state@${index}`) };
}

/**
 * Leader '1' at term 2 of `peers`. Its storage held entries 1..7 of term 1, took a snapshot at 5 and
 * compacted up to it; its log is now 6, 7 (term 1) and its no-op 8 (term 2). Follower '2' has answered
 * nothing yet (Probe at next 8, not recently active).
 */
function compactedLeader(peers: NodeId[] = ['1', '2']): { r: Raft; s: MemoryStorage } {
  const s = new MemoryStorage();
  s.append(ents(1, [1, 1, 1, 1, 1, 1, 1]));
  s.setHardState({ term: 1, vote: None, commit: 7 });
  s.createSnapshot(5, { voters: peers }, new TextEncoder().encode('state@5'));
  s.compact(5);
  const r = newRaft('1', peers, {}, s);
  r.hup(CampaignType.Election);
  for (const id of peers) if (id !== '1') r.step(msg(T.MsgVoteResp, id, '1', 2));
  expect(r.state).toBe(StateType.Leader);
  persist(r);
  takeMsgs(r);
  return { r, s };
}

/** Follower '2' of compactedLeader() rejects the probe: its log ends at 3, so it needs the snapshot. */
function rejectProbe(r: Raft): void {
  r.step(msg(T.MsgAppResp, '2', '1', 2, { index: 7, reject: true, rejectHint: 3, logTerm: 1 }));
}

function snapStatus(from: NodeId, failed: boolean): Message {
  return msg(T.MsgSnapStatus, from, '1', 0, { reject: failed });
}

function types(ms: Message[]): string[] {
  return ms.map((m) => `${T[m.type]}>${m.to}`);
}

describe('log compaction and InstallSnapshot (§7)', () => {
  describe('leader', () => {
    it('sends the snapshot to a follower whose next entry was compacted, and waits in Snapshot state', () => {
      const { r } = compactedLeader();
      rejectProbe(r);
      const out = takeMsgs(r);
      expect(types(out)).toEqual(['MsgSnap>2']);
      expect(out[0].snapshot!.metadata).toEqual({ index: 5, term: 1, confState: { voters: ['1', '2'] } });
      expect(new TextDecoder().decode(out[0].snapshot!.data)).toBe('state@5');
      const pr = r.trk.progress.get('2')!;
      expect([pr.state, pr.pendingSnapshot, pr.next]).toEqual(['Snapshot', 5, 6]);
    });

    it('sends nothing else to a follower in Snapshot state, whatever happens meanwhile', () => {
      const { r } = compactedLeader(['1', '2', '3']);
      rejectProbe(r);
      takeMsgs(r);
      for (let i = 0; i < 3; i++) r.propose(new Uint8Array([i]));
      persist(r);
      expect(takeMsgs(r).filter((m) => m.to === '2')).toEqual([]);
      r.tick();
      // Heartbeats still go out (they keep the follower from campaigning) but their answers send no MsgApp.
      expect(types(takeMsgs(r).filter((m) => m.to === '2'))).toEqual(['MsgHeartbeat>2']);
      r.step(msg(T.MsgHeartbeatResp, '2', '1', 2));
      r.step(msg(T.MsgHeartbeatResp, '2', '1', 2));
      expect(takeMsgs(r)).toEqual([]);
      // An old answer that does not bring the follower within reach of the log changes nothing either.
      r.step(msg(T.MsgAppResp, '2', '1', 2, { index: 3 }));
      expect(takeMsgs(r).filter((m) => m.to === '2')).toEqual([]);
      expect(r.trk.progress.get('2')!.state).toBe('Snapshot');
      // Follower 3 is not held back by it: it gets the entries it asks for.
      r.step(msg(T.MsgAppResp, '3', '1', 2, { index: 8 }));
      expect(types(takeMsgs(r))).toEqual(['MsgApp>3']);
    });

    it('a failed snapshot: Probe from match + 1, paused until a heartbeat answer, then a snapshot again', () => {
      const { r } = compactedLeader();
      rejectProbe(r);
      takeMsgs(r);
      r.step(snapStatus('2', true));
      const pr = r.trk.progress.get('2')!;
      expect([pr.state, pr.pendingSnapshot, pr.next, pr.msgAppFlowPaused]).toEqual(['Probe', 0, 1, true]);
      r.propose(new Uint8Array([1]));
      expect(takeMsgs(r)).toEqual([]);
      r.step(msg(T.MsgHeartbeatResp, '2', '1', 2));
      expect(types(takeMsgs(r))).toEqual(['MsgSnap>2']);
      expect([pr.state, pr.pendingSnapshot]).toEqual(['Snapshot', 5]);
    });

    it('a delivered snapshot: Probe after it, paused until the follower answers, then replication', () => {
      const { r } = compactedLeader();
      rejectProbe(r);
      takeMsgs(r);
      r.step(snapStatus('2', false));
      const pr = r.trk.progress.get('2')!;
      expect([pr.state, pr.pendingSnapshot, pr.next, pr.msgAppFlowPaused]).toEqual(['Probe', 0, 6, true]);
      expect(takeMsgs(r)).toEqual([]);
      // The follower installed it and says so.
      r.step(msg(T.MsgAppResp, '2', '1', 2, { index: 5 }));
      expect(pr.state).toBe('Replicate');
      const out = takeMsgs(r);
      expect(out.map((m) => [T[m.type], m.index, m.logTerm, it2(m.entries ?? [])])).toEqual([
        ['MsgApp', 5, 1, [[6, 1], [7, 1], [8, 2]]],
      ]);
    });

    it("leaves Snapshot state as soon as the follower's MsgAppResp shows it can be caught up from the log", () => {
      const { r } = compactedLeader();
      rejectProbe(r);
      takeMsgs(r);
      // The answer to the snapshot may come before the transport's report: replication resumes at once.
      r.step(msg(T.MsgAppResp, '2', '1', 2, { index: 5 }));
      const pr = r.trk.progress.get('2')!;
      expect([pr.state, pr.match, pr.pendingSnapshot]).toEqual(['Replicate', 5, 0]);
      expect(types(takeMsgs(r))).toEqual(['MsgApp>2']);
      // The report that follows is old news.
      r.step(snapStatus('2', false));
      expect(pr.state).toBe('Replicate');
    });

    it('a reported outcome is ignored unless the follower waits for a snapshot', () => {
      const { r } = compactedLeader();
      r.step(msg(T.MsgAppResp, '2', '1', 2, { index: 8 }));
      const pr = r.trk.progress.get('2')!;
      expect(pr.state).toBe('Replicate');
      r.step(snapStatus('2', true));
      expect([pr.state, pr.match]).toEqual(['Replicate', 8]);
    });

    it('sends no snapshot to a follower it has not heard from recently; its next answer does', () => {
      const { r } = compactedLeader();
      const pr = r.trk.progress.get('2')!;
      // As if an earlier probe had walked next down into the compacted part before check-quorum reset
      // the follower's activity.
      pr.next = 4;
      pr.msgAppFlowPaused = false;
      expect(pr.recentActive).toBe(false);
      r.propose(new Uint8Array([1]));
      expect(takeMsgs(r)).toEqual([]);
      expect(pr.state).toBe('Probe');
      r.step(msg(T.MsgHeartbeatResp, '2', '1', 2));
      expect(types(takeMsgs(r))).toEqual(['MsgSnap>2']);
    });

    it('skips the follower while the storage says its snapshot is temporarily unavailable', () => {
      const { r, s } = compactedLeader();
      s.setSnapshotTemporarilyUnavailable(true);
      rejectProbe(r);
      expect(takeMsgs(r)).toEqual([]);
      const pr = r.trk.progress.get('2')!;
      expect(pr.state).toBe('Probe');
      s.setSnapshotTemporarilyUnavailable(false);
      r.step(msg(T.MsgHeartbeatResp, '2', '1', 2));
      expect(types(takeMsgs(r))).toEqual(['MsgSnap>2']);
      expect(pr.state).toBe('Snapshot');
    });

    it('throws when the log was compacted and the storage holds no snapshot (broken storage)', () => {
      const s = new MemoryStorage();
      s.append(ents(1, [1, 1, 1]));
      s.setHardState({ term: 1, vote: None, commit: 3 });
      s.compact(2);
      const r = newRaft('1', ['1', '2'], {}, s);
      r.hup(CampaignType.Election);
      r.step(msg(T.MsgVoteResp, '2', '1', 2));
      persist(r);
      takeMsgs(r);
      expect(() => r.step(msg(T.MsgAppResp, '2', '1', 2, { index: 3, reject: true, rejectHint: 0 }))).toThrow('holds no snapshot');
    });
  });

  describe('follower', () => {
    /** Follower '1' of ['1', '2', '3'] at term 2 whose storage holds entries of the given terms, committed up to `commit`. */
    function follower(terms: number[], commit: number): Raft {
      const s = new MemoryStorage();
      s.append(ents(1, terms));
      s.setHardState({ term: 2, vote: None, commit });
      return newRaft('1', ['1', '2', '3'], {}, s);
    }

    function snap(r: Raft, sn: Snapshot, term = 2): Message[] {
      r.step(msg(T.MsgSnap, '2', '1', term, { snapshot: sn }));
      return takeMsgs(r);
    }

    it('installs a snapshot its log does not hold: the log is the snapshot, committed at its index', () => {
      const r = follower([1, 1, 1], 1);
      const out = snap(r, snapshot(11, 2, ['1', '2', '4']));
      expect(out.map((m) => [T[m.type], m.to, m.index, m.reject])).toEqual([['MsgAppResp', '2', 11, false]]);
      const log = r.raftLog;
      expect([log.firstIndex(), log.lastIndex(), log.lastTerm(), log.committed]).toEqual([12, 11, 2, 11]);
      expect(log.unstable.nextSnapshot()?.metadata.index).toBe(11);
      // What storage still holds below it is no longer part of the log.
      expect(() => log.term(3)).toThrow(CompactedError);
      // The configuration is the snapshot's.
      expect(r.trk.voters).toEqual(['1', '2', '4']);
      expect(r.confState()).toEqual({ voters: ['1', '2', '4'] });
      expect([r.trk.isVoter('4'), r.trk.isVoter('3')]).toEqual([true, false]);
      // Once persisted, entries after it are appended as usual.
      persist(r);
      expect([log.firstIndex(), log.applied]).toEqual([12, 11]);
      r.step(msg(T.MsgApp, '2', '1', 2, { index: 11, logTerm: 2, commit: 12, entries: ents(12, [2]) }));
      expect(takeMsgs(r).map((m) => [T[m.type], m.index, m.reject])).toEqual([['MsgAppResp', 12, false]]);
      expect(log.committed).toBe(12);
    });

    it('replaces a conflicting uncommitted suffix: the snapshot entry has another term', () => {
      const r = follower([1, 1, 1, 1, 1], 2);
      const out = snap(r, snapshot(4, 2));
      expect(out.map((m) => m.index)).toEqual([4]);
      expect([r.raftLog.lastIndex(), r.raftLog.lastTerm(), r.raftLog.committed]).toEqual([4, 2, 4]);
    });

    it.each([
      ['older than the commit index', 3],
      ['at the commit index', 5],
    ])('ignores a snapshot %s, answering with the commit index', (_name, index) => {
      const r = follower([1, 1, 1, 1, 1, 2], 5);
      const out = snap(r, snapshot(index, 1));
      expect(out.map((m) => [T[m.type], m.index, m.reject])).toEqual([['MsgAppResp', 5, false]]);
      expect([r.raftLog.committed, r.raftLog.lastIndex()]).toEqual([5, 6]);
      expect(r.raftLog.unstable.snapshot).toBeUndefined();
    });

    it('fast-forwards to a snapshot whose last entry it holds, retaining the entries that follow (Figure 13, 6)', () => {
      // Entries 4 and 5 may come from a deposed leader of term 2 (the sender leads term 3): only the prefix
      // up to the snapshot is known to match the leader's log, so that is what the answer acknowledges.
      const r = follower([1, 1, 2, 2, 2], 1);
      const out = snap(r, snapshot(3, 2), 3);
      expect(out.map((m) => [T[m.type], m.index, m.reject])).toEqual([['MsgAppResp', 3, false]]);
      const log = r.raftLog;
      expect([log.committed, log.lastIndex(), log.firstIndex()]).toEqual([3, 5, 1]);
      expect(log.unstable.snapshot).toBeUndefined();
      expect([log.term(4), log.term(5)]).toEqual([2, 2]);
    });

    it('ignores a snapshot whose configuration does not contain it', () => {
      const r = follower([1, 1], 1);
      const out = snap(r, snapshot(11, 2, ['2', '3', '4']));
      expect(out.map((m) => [T[m.type], m.index])).toEqual([['MsgAppResp', 1]]);
      expect([r.raftLog.committed, r.raftLog.lastIndex()]).toEqual([1, 2]);
      expect(r.trk.voters).toEqual(['1', '2', '3']);
    });

    it('a candidate that receives a snapshot of its term becomes a follower of the sender and installs it', () => {
      const r = follower([1], 1);
      r.hup(CampaignType.Election);
      expect([r.state, r.term]).toEqual([StateType.Candidate, 3]);
      takeMsgs(r);
      r.step(msg(T.MsgSnap, '2', '1', 3, { snapshot: snapshot(9, 3) }));
      expect([r.state, r.lead, r.raftLog.committed]).toEqual([StateType.Follower, '2', 9]);
      expect(takeMsgs(r).map((m) => [T[m.type], m.index])).toEqual([['MsgAppResp', 9]]);
    });

    it('a snapshot from a stale term is ignored without an answer', () => {
      const r = follower([1], 1);
      r.step(msg(T.MsgSnap, '2', '1', 1, { snapshot: snapshot(9, 1) }));
      expect(takeMsgs(r)).toEqual([]);
      expect(r.raftLog.committed).toBe(1);
    });
  });
});
