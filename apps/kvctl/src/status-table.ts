import { ClusterView } from './kv-client';

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
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const numeric = new Set([3, 5, 6]);
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [line(COLUMNS), ...rows.map(line)];
  const failures = view.nodes.filter((n) => n.error);
  if (failures.length > 0) {
    out.push('', ...failures.map((n) => (n.nodeId ? `${n.nodeId} (${n.endpoint}): ${n.error}` : `${n.endpoint}: ${n.error}`)));
  }
  if (!view.leader) out.push('', 'no leader: the cluster cannot serve writes or linearizable reads right now');
  return `${out.join('\n')}\n`;
}
