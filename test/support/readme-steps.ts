/**
 * Reads the README's runnable examples and checks their outputs (test/e2e/readme.e2e-spec.ts).
 *
 * The README's markup, which this module defines:
 * - A ```bash block is a step: its commands run in order (one per line; `\` continues a line; `#` lines
 *   are comments).
 * - `<!-- skip: reason -->` right after a ```bash block: the step is not run (`npm install`, ...).
 * - `<!-- expect: json|text [leader] [varying] -->` right before a fenced block: that block is the output of
 *   the ```bash block just before it, what a user sees in the terminal (npm's `> script` banner aside).
 *   - `json`: one JSON value per line. Values that vary from run to run (term, indexes, timings: see
 *     VARYING_KEYS) only need the same type. An object ending in `,...}` may have more keys.
 *   - `text`: the lines, exactly; a line `...` stands for any number of lines (HTTP headers, say).
 *   - `leader`: this step finds the leader. The README then tells the reader to swap node names and
 *     ports if another node leads; the runner does the same for the steps that follow (see Roles).
 *   - `varying` (text): numbers and hexadecimal digests differ from run to run (indexes, sizes, checksums in
 *     a report): lines are compared with them masked (maskVarying).
 * - A ```bash block whose commands all start with `docker-compose` is the Docker Compose twin of the
 *   local step before it: not run here (no Docker engine), but checked against docker-compose.yml.
 */

export interface Fence {
  lang: string;
  text: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The HTML comment that introduces this fence or follows it, without `<!--` `-->`. */
  before?: string;
  after?: string;
  section: string;
  subsection?: string;
}

export interface Expectation {
  kind: 'json' | 'text';
  /** The step finds the leader; see Roles. */
  leader: boolean;
  /** Text compared with numbers and digests masked (maskVarying); set only when true. */
  varying?: boolean;
  text: string;
  line: number;
}

export interface Step {
  kind: 'run' | 'docker' | 'skip';
  commands: string[];
  fence: Fence;
  expect?: Expectation;
  skipReason?: string;
}

const COMMENT = /^<!--\s*(.*?)\s*-->$/;

/** Every fenced block, with its section and the HTML comments directly before and after it. */
export function parseFences(markdown: string): Fence[] {
  const lines = markdown.split('\n');
  const fences: Fence[] = [];
  let section = '';
  let subsection: string | undefined;
  let pending: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const open = /^```(\w*)\s*$/.exec(line);
    if (open) {
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
      if (i >= lines.length) throw new Error(`README line ${start + 1}: unterminated code block`);
      // A comment on the line right after the closing fence belongs to this block (skip markers).
      const next = lines[i + 1]?.trim() ?? '';
      const after = COMMENT.exec(next)?.[1];
      fences.push({ lang: open[1], text: body.join('\n'), line: start + 1, before: pending, after, section, subsection });
      pending = undefined;
      if (after !== undefined && !after.startsWith('expect')) i++; // consumed as this block's marker
      continue;
    }
    const h2 = /^## (.*)$/.exec(line);
    const h3 = /^### (.*)$/.exec(line);
    if (h2) {
      section = h2[1].trim();
      subsection = undefined;
    } else if (h3) {
      subsection = h3[1].trim();
    }
    const comment = COMMENT.exec(line.trim());
    if (comment) pending = comment[1];
    else if (line.trim() !== '') pending = undefined;
  }
  return fences;
}

/** A bash block's commands: continuation lines joined, comments and blank lines dropped. */
export function commandsOf(script: string): string[] {
  const commands: string[] = [];
  let current = '';
  for (const raw of script.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    commands.push((current + line.trim()).trim());
    current = '';
  }
  if (current.trim() !== '') commands.push(current.trim());
  return commands;
}

function parseExpectMarker(marker: string, line: number): Pick<Expectation, 'kind' | 'leader' | 'varying'> {
  const words = marker.replace(/^expect:?/, '').trim().split(/[\s,]+/).filter(Boolean);
  const kind = words[0];
  if (kind !== 'json' && kind !== 'text') throw new Error(`README line ${line}: expected "expect: json" or "expect: text", got "${marker}"`);
  const unknown = words.slice(1).filter((w) => w !== 'leader' && w !== 'varying');
  if (unknown.length > 0) throw new Error(`README line ${line}: unknown expect option(s) ${unknown.join(', ')}`);
  if (kind !== 'text' && words.includes('varying')) throw new Error(`README line ${line}: "varying" applies to text outputs`);
  return { kind, leader: words.includes('leader'), ...(words.includes('varying') ? { varying: true } : {}) };
}

/** The steps of the given `## ` sections, in order. Throws on markup it does not understand. */
export function readmeSteps(markdown: string, sections: string[]): Step[] {
  const fences = parseFences(markdown).filter((f) => sections.includes(f.section));
  const steps: Step[] = [];
  for (const fence of fences) {
    if (fence.before?.startsWith('expect')) {
      const previous = steps[steps.length - 1];
      const previousFence = fences[fences.indexOf(fence) - 1];
      if (!previous || previous.fence !== previousFence || previous.kind !== 'run') {
        throw new Error(`README line ${fence.line}: an expected output must directly follow the bash block it belongs to`);
      }
      if (previous.expect) throw new Error(`README line ${fence.line}: two expected outputs for one bash block`);
      previous.expect = { ...parseExpectMarker(fence.before, fence.line), text: fence.text, line: fence.line };
      continue;
    }
    if (fence.lang !== 'bash' && fence.lang !== 'sh') continue;
    const commands = commandsOf(fence.text);
    if (fence.after?.startsWith('skip')) {
      steps.push({ kind: 'skip', commands, fence, skipReason: fence.after.replace(/^skip:?\s*/, '') });
      continue;
    }
    if (fence.after !== undefined && !fence.after.startsWith('expect')) {
      throw new Error(`README line ${fence.line}: unknown marker "${fence.after}" after a bash block`);
    }
    const docker = commands.length > 0 && commands.every((c) => /^docker(-compose)? /.test(c));
    steps.push({ kind: docker ? 'docker' : 'run', commands, fence });
  }
  return steps;
}

/**
 * The README names nodes by role ("node1 leads"); the cluster decides who actually leads. Roles maps each
 * role to the node that plays it, and rewrites README text (node names, localhost ports) accordingly.
 * Swapping two roles is exactly what the README tells its reader to do when another node leads.
 */
export class Roles {
  /** actualOf[role] = the node number playing that role; index 0 unused. */
  private readonly actualOf: number[];

  constructor(
    readonly nodes: number,
    /** The port node1 really listens on (the README says 3001). */
    readonly basePort = 3001,
  ) {
    this.actualOf = Array.from({ length: nodes + 1 }, (_, i) => i);
  }

  actual(role: number): number {
    return this.actualOf[role];
  }

  roleOf(actual: number): number {
    const role = this.actualOf.indexOf(actual);
    if (role < 1) throw new Error(`no role for node${actual}`);
    return role;
  }

  swap(a: number, b: number): void {
    [this.actualOf[a], this.actualOf[b]] = [this.actualOf[b], this.actualOf[a]];
  }

  /** Makes role `role` be played by node `actual` (a swap of two roles). */
  assign(role: number, actual: number): void {
    if (this.actualOf[role] !== actual) this.swap(role, this.roleOf(actual));
  }

  /** README text → text for this cluster: `nodeN` and `localhost:300N` name the node playing role N. */
  rewrite(text: string): string {
    return text.replace(/\bnode([1-9])\b|\blocalhost:300([1-9])\b/g, (match, name?: string, port?: string) => {
      const role = Number(name ?? port);
      if (role > this.nodes) return match;
      const actual = this.actualOf[role];
      return name ? `node${actual}` : `localhost:${this.basePort + actual - 1}`;
    });
  }

  toString(): string {
    return this.actualOf
      .slice(1)
      .map((a, i) => `node${i + 1}→node${a}`)
      .join(' ');
  }
}

/** Keys whose values legitimately change from run to run: only their type is compared. */
export const VARYING_KEYS = new Set(['term', 'index', 'createIndex', 'modIndex', 'commitIndex', 'appliedIndex', 'lastLogIndex', 'snapshotIndex', 'firstLogIndex', 'matchIndex', 'nextIndex', 'lastContactMs', 'dataBytes']);

/** In a leader-finding step, these describe the node asked, which need not be the leader. */
export const ASKED_NODE_KEYS = new Set(['state', 'isLeader', 'nodeId', 'url', 'peers']);

const MORE = '\u2026more';

/** One expected JSON line; `,...}` (or `{...}`) marks an object that may have more keys. */
export function parseExpectedJson(line: string): unknown {
  const marked = line.replace(/,\s*\.\.\.\s*}/g, `,"${MORE}":true}`).replace(/{\s*\.\.\.\s*}/g, `{"${MORE}":true}`);
  return JSON.parse(marked);
}

/** Differences between an expected value (README) and an actual one, as readable lines. */
export function compareJson(expected: unknown, actual: unknown, options: { relaxed?: Set<string> } = {}, path = '$'): string[] {
  const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (typeOf(expected) !== typeOf(actual)) {
    return [`${path}: expected ${typeOf(expected)} ${JSON.stringify(expected)}, got ${typeOf(actual)} ${JSON.stringify(actual)}`];
  }
  if (Array.isArray(expected)) {
    const got = actual as unknown[];
    if (got.length !== expected.length) return [`${path}: expected ${expected.length} items, got ${got.length}`];
    return expected.flatMap((e, i) => compareJson(e, got[i], options, `${path}[${i}]`));
  }
  if (typeOf(expected) === 'object') {
    const exp = expected as Record<string, unknown>;
    const got = actual as Record<string, unknown>;
    const open = MORE in exp;
    const problems: string[] = [];
    for (const key of Object.keys(exp)) {
      if (key === MORE) continue;
      if (!(key in got)) {
        problems.push(`${path}.${key}: missing`);
        continue;
      }
      if (options.relaxed?.has(key)) continue;
      if (VARYING_KEYS.has(key)) {
        if (typeOf(exp[key]) !== typeOf(got[key])) problems.push(`${path}.${key}: expected a ${typeOf(exp[key])}, got ${JSON.stringify(got[key])}`);
        continue;
      }
      problems.push(...compareJson(exp[key], got[key], options, `${path}.${key}`));
    }
    if (!open) {
      for (const key of Object.keys(got)) if (!(key in exp)) problems.push(`${path}.${key}: not in the README's output`);
    }
    return problems;
  }
  return expected === actual ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

/** Output lines as a reader compares them: no carriage returns, no blank lines, no npm `> script` banner. */
export function outputLines(text: string): string[] {
  return text
    .replace(/\r/g, '')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('> '));
}

/**
 * Sorts each run of adjacent lines that differ only in node names ("Stopping node2 ... done", "Stopping
 * node3 ... done"): a command that acts on every node lists them in name order, whichever roles they play,
 * so after Roles.rewrite the README's list may come out in another order than the real one.
 */
export function canonicalNodeOrder(lines: string[]): string[] {
  const out: string[] = [];
  const key = (line: string) => line.replace(/\bnode\d+\b/g, 'node#');
  for (let i = 0; i < lines.length; ) {
    let j = i + 1;
    while (j < lines.length && key(lines[j]) === key(lines[i])) j++;
    out.push(...lines.slice(i, j).sort());
    i = j;
  }
  return out;
}

/** A line with what changes from run to run masked: hexadecimal runs of 16+ digits, then every number. */
export function maskVarying(line: string): string {
  return line.replace(/\b[0-9a-f]{16,}\b/g, '<hex>').replace(/\d+/g, '#');
}

/** Whether `actual` matches `expected` line for line, a `...` line matching any run of lines. */
export function matchText(expected: string[], actual: string[]): boolean {
  if (expected.length === 0) return actual.length === 0;
  const [head, ...rest] = expected;
  if (head.trim() === '...') {
    for (let skip = 0; skip <= actual.length; skip++) if (matchText(rest, actual.slice(skip))) return true;
    return false;
  }
  return actual.length > 0 && actual[0] === head && matchText(rest, actual.slice(1));
}
