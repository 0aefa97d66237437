/**
 * How the README's membership walkthroughs (test/e2e/membership-readme.e2e-spec.ts) compare an output with
 * the one the README shows, under `<!-- expect: text varying -->`.
 *
 * readme-steps' maskVarying masks every number, which would hide what these outputs are about (`node4`,
 * `3 voters`). Here only what changes from run to run is left out:
 * - in a `kvctl member list` row, MATCH and LAST CONTACT, and which member is marked `, leader` (the election
 *   decides; the README says so); the row keeps its NODE, URL and role;
 * - in its summary line, the cluster id and the leader's name (the counts of voters and learners stay);
 * - elsewhere, 16+ hexadecimal digits and the numbers that are neither part of a name (`node4`) nor a
 *   `localhost` port, e.g. `(index 4)`;
 * - everywhere, the width of the gaps between columns (a table aligns them to its widest cell).
 */

const ROW = /^(\S+)\s+(https?:\/\/\S+|-)\s+(voter|learner)(?:, leader)?\s+(?:\d+|-)\s+(?:\d+ ms|-)$/;
const SUMMARY = /^cluster [0-9a-f]+: (\d+ voters?, \d+ learners?); (?:leader \S+|no leader)$/;

/** One output line in the form it is compared in (see the file's comment). */
export function comparableLine(line: string): string {
  const trimmed = line.trim().replace(/\s+/g, ' ');
  const row = ROW.exec(trimmed);
  if (row) return `${row[1]} ${row[2]} ${row[3]}`;
  const summary = SUMMARY.exec(trimmed);
  if (summary) return `cluster <id>: ${summary[1]}; leader <any>`;
  return trimmed.replace(/\b[0-9a-f]{16,}\b/g, '<hex>').replace(/(?<!localhost:)\b\d+\b/g, '#');
}
