/**
 * Lines of a plain-text table: the header, then the rows, each column as wide as its widest cell, two
 * spaces apart, the `numeric` columns (by position) aligned right, trailing spaces trimmed.
 */
export function alignColumns(header: readonly string[], rows: readonly (readonly string[])[], numeric: ReadonlySet<number>): string[] {
  const widths = header.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
