/** The Grafana dashboard's queries and the metric names they use (test/docker, test/e2e). */

export interface DashboardQuery {
  panel: string;
  expr: string;
  legendFormat: string;
}

export function dashboardQueries(dashboard: { panels: Array<{ title: string; targets: Array<{ expr: string; legendFormat: string }> }> }): DashboardQuery[] {
  return dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr, legendFormat: t.legendFormat })));
}

const PROMQL_WORDS = new Set([
  'sum', 'max', 'min', 'avg', 'count', 'by', 'without', 'rate', 'irate', 'increase', 'deriv', 'delta', 'idelta',
  'histogram_quantile', 'absent', 'or', 'and', 'unless', 'on', 'ignoring', 'group_left', 'group_right', 'le',
  'topk', 'bottomk', 'offset', 'bool', 'humanize',
]);

/** Metric names in PromQL expressions: identifiers not inside braces or label lists, and not functions. */
export function metricNames(exprs: string[]): string[] {
  const names = new Set<string>();
  for (const expr of exprs) {
    const stripped = expr
      .replace(/\{[^}]*\}/g, ' ') // label matchers
      .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ') // grouping labels
      .replace(/\[[^\]]*\]/g, ' ') // ranges
      .replace(/"[^"]*"/g, ' ');
    for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
      const word = match[0];
      const next = stripped.slice(match.index! + word.length).trimStart();
      if (PROMQL_WORDS.has(word) || next.startsWith('(')) continue;
      names.add(word);
    }
  }
  return [...names].sort();
}

/** Label names a legend uses: `{{node}} {{route}}` → node, route. */
export function legendLabels(legend: string): string[] {
  return [...legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]);
}
