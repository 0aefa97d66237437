import { ClusterView } from './kv-client';
import { alignColumns } from './table';

const COLUMNS = ['NODE', 'URL', 'STATE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED'] as const;

/**
 * `kvctl status` as a table, one row per node, then one line per node that did not answer:
 *
 *   NODE   URL                    STATE        TERM  LEADER  COMMIT  APPLIED
 *   node1  http://localhost:3001  LEADER          2  node1        7        7
 *   node3  http://localhost:3003  UNREACHABLE     -  -            -        -
 *
 *   node3 (http://localhost:3003): connection refused
 */
export function formatStatusTable(view: ClusterView): string {
  const rows = view.nodes.map((n) => {
    const s = n.status;
    return [
      n.nodeId ?? '?',
      s?.url ?? n.endpoint,
      s ? s.state : 'UNREACHABLE',
      s ? String(s.term) : '-',
      s ? (s.leader ?? '-') : '-',
      s ? String(s.commitIndex) : '-',
      s ? String(s.appliedIndex) : '-',
    ];
  });
  const out = alignColumns(COLUMNS, rows, new Set([3, 5, 6]));
  const failures = view.nodes.filter((n) => n.error);
  if (failures.length > 0) {
    out.push('', ...failures.map((n) => (n.nodeId ? `${n.nodeId} (${n.endpoint}): ${n.error}` : `${n.endpoint}: ${n.error}`)));
  }
  if (!view.leader) out.push('', 'no leader: the cluster cannot serve writes or linearizable reads right now');
  return `${out.join('\n')}\n`;
}
