import { MembersList } from './kv-client';
import { alignColumns } from './table';

const COLUMNS = ['NODE', 'URL', 'ROLE', 'MATCH', 'LAST CONTACT'] as const;

/**
 * `kvctl member list` as a table, one row per member, then the cluster id and the leader:
 *
 *   NODE   URL                    ROLE           MATCH  LAST CONTACT
 *   node1  http://localhost:3001  voter, leader     57  -
 *   node4  http://localhost:3004  learner           50  12 ms
 *
 *   cluster 7f3c9a0e: 3 voters, 1 learner; leader node1
 *
 * MATCH and LAST CONTACT are known on the leader only: from a follower's view they are `-`, and a line says so.
 */
export function formatMembersTable(view: MembersList): string {
  const rows = view.members.map((m) => [
    m.nodeId,
    m.url ?? '-',
    m.nodeId === view.leader ? `${m.role}, leader` : m.role,
    m.match === undefined ? '-' : String(m.match),
    m.lastContactMs === undefined ? '-' : `${m.lastContactMs} ms`,
  ]);
  const out = alignColumns(COLUMNS, rows, new Set([3]));
  const voters = view.members.filter((m) => m.role === 'voter').length;
  const learners = view.members.length - voters;
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  out.push('', `cluster ${view.clusterId}: ${count(voters, 'voter')}, ${count(learners, 'learner')}; ${view.leader ? `leader ${view.leader}` : 'no leader'}`);
  if (!view.leader) out.push('no leader: membership changes cannot be made right now');
  else if (view.members.find((m) => m.self)?.nodeId !== view.leader) {
    out.push(`(the view of ${view.answeredBy}, a follower: match and last contact are known on the leader only)`);
  }
  return `${out.join('\n')}\n`;
}
