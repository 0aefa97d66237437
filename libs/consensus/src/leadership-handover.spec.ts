/**
 * pickTransferee: the most caught-up peer (highest match) among those heard from within the last election
 * timeout; never the leader itself; undefined when no peer qualifies.
 */
import { ProgressStatus, Status } from './core/raw-node';
import { StateType } from './core/types';
import { pickTransferee } from './leadership-handover';

const NOW = 10_000;
const ELECTION_MS = 1000;

function status(progress: Record<string, number>): Status {
  const p: Record<string, ProgressStatus> = {};
  for (const [id, match] of Object.entries(progress)) {
    p[id] = { match, next: match + 1, state: 'Replicate', recentActive: true, inflight: 0, isLearner: id.startsWith('learner') };
  }
  return {
    id: 'a',
    term: 3,
    vote: 'a',
    commit: 10,
    lead: 'a',
    raftState: StateType.Leader,
    applied: 10,
    lastIndex: 12,
    leadTransferee: '',
    progress: p,
  };
}

interface Case {
  name: string;
  progress: Record<string, number>;
  contact: Record<string, number>;
  want: string | undefined;
}

describe('pickTransferee', () => {
  it.each<Case>([
    {
      name: 'a learner, however caught up, is passed over (it cannot lead)',
      progress: { a: 12, learner4: 12, b: 9 },
      contact: { learner4: NOW, b: NOW },
      want: 'b',
    },
    {
      name: 'the highest match among recently heard peers',
      progress: { a: 12, b: 8, c: 11, d: 10 },
      contact: { b: NOW, c: NOW - 10, d: NOW },
      want: 'c',
    },
    {
      name: 'a more caught-up peer not heard within the election timeout is passed over',
      progress: { a: 12, b: 8, c: 12 },
      contact: { b: NOW - 100, c: NOW - 5000 },
      want: 'b',
    },
    {
      name: 'heard exactly one election timeout ago: too long',
      progress: { a: 12, b: 12, c: 3 },
      contact: { b: NOW - ELECTION_MS, c: NOW - ELECTION_MS + 1 },
      want: 'c',
    },
    {
      name: 'a peer that never sent anything does not qualify',
      progress: { a: 12, b: 12, c: 1 },
      contact: { c: NOW },
      want: 'c',
    },
    {
      name: 'a recent peer with match 0 still qualifies',
      progress: { a: 12, b: 0 },
      contact: { b: NOW },
      want: 'b',
    },
    {
      name: 'never itself, even when it has the highest match and a contact time',
      progress: { a: 12, b: 5 },
      contact: { a: NOW, b: NOW },
      want: 'b',
    },
    {
      name: 'on equal match, the first in progress order',
      progress: { a: 12, b: 9, c: 9 },
      contact: { b: NOW, c: NOW },
      want: 'b',
    },
    {
      name: 'none heard from within the timeout: undefined',
      progress: { a: 12, b: 12, c: 12 },
      contact: { b: NOW - 2000, c: NOW - 1000 },
      want: undefined,
    },
    {
      name: 'only the leader itself: undefined',
      progress: { a: 12 },
      contact: { a: NOW },
      want: undefined,
    },
    {
      name: 'no progress (not leader): undefined',
      progress: {},
      contact: { b: NOW },
      want: undefined,
    },
  ])('$name', ({ progress, contact, want }) => {
    const lastContact = new Map(Object.entries(contact));
    expect(pickTransferee(status(progress), lastContact, NOW, ELECTION_MS)).toBe(want);
  });
});
