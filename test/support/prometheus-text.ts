/**
 * Reading a node's `/metrics` (the Prometheus text format) in tests: the samples of one metric, filtered by
 * labels. Enough for counters, gauges and a histogram's `_count` / `_sum`; not a full parser (no escapes in
 * label values, which this store's metrics never have).
 */

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;

/** Every sample of `name` whose labels include `labels`. */
export function samples(text: string, name: string, labels: Record<string, string> = {}): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m || m[1] !== name) continue;
    const parsed: Record<string, string> = {};
    for (const pair of (m[2] ?? '').split(',').filter(Boolean)) {
      const eq = pair.indexOf('=');
      parsed[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim().replace(/^"|"$/g, '');
    }
    if (Object.entries(labels).every(([k, v]) => parsed[k] === v)) out.push({ labels: parsed, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the matching samples' values (0 when none match). */
export function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  return samples(text, name, labels).reduce((sum, s) => sum + s.value, 0);
}
