/**
 * The shape the code keeps (GUIDE.md, docs/consensus.md): no import cycle among the libraries' and apps'
 * modules, a pure consensus core that imports nothing outside itself, adapters that reach the consensus
 * library only through its core and ports entries, and small files in the consensus library.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import * as ts from 'typescript';

const ROOT = resolve(__dirname, '../..');
const ALIASES: Record<string, string> = {
  '@app/consensus/core': 'libs/consensus/src/core/index.ts',
  '@app/consensus/ports': 'libs/consensus/src/ports.ts',
  '@app/consensus/identity': 'libs/consensus/src/identity.ts',
  '@app/consensus': 'libs/consensus/src/index.ts',
  '@app/storage': 'libs/storage/src/index.ts',
  '@app/cluster-rpc': 'libs/cluster-rpc/src/index.ts',
  '@app/kv': 'libs/kv/src/index.ts',
  '@app/config': 'config/index.ts',
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.spec.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The repository files a module imports (package imports are left out). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const ref of ts.preProcessFile(text, true, true).importedFiles) {
    const spec = ref.fileName;
    let target: string | undefined = ALIASES[spec];
    if (!target && spec.startsWith('.')) {
      const base = relative(ROOT, resolve(ROOT, dirname(file), spec));
      target = [`${base}.ts`, join(base, 'index.ts')].find((c) => {
        try {
          return statSync(join(ROOT, c)).isFile();
        } catch {
          return false;
        }
      });
    }
    if (target) out.push(target);
  }
  return out;
}

const FILES = [...sources('libs'), ...sources('apps'), ...sources('config')];
const GRAPH = new Map(FILES.map((f) => [f, importsOf(f)]));

/** Every cycle found by a depth-first search (each reported once, as the path that closes it). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open') found.push([...stack.slice(stack.indexOf(g)), g]);
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

/** What adapters may import of the consensus library besides its core: the ports and the identity record. */
const ENTRIES = ['libs/consensus/src/ports.ts', 'libs/consensus/src/identity.ts'];

describe('code layout', () => {
  it('finds a cycle when there is one (the check itself)', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c', 'a']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('has no import cycle among the libraries, apps and config', () => {
    expect(GRAPH.size).toBeGreaterThan(50);
    expect(cycles(GRAPH).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('keeps the consensus core pure: it imports only its own files', () => {
    const core = FILES.filter((f) => f.startsWith('libs/consensus/src/core/'));
    expect(core.length).toBeGreaterThan(10);
    const outside = core.flatMap((f) => GRAPH.get(f)!.filter((g) => !g.startsWith('libs/consensus/src/core/')).map((g) => `${f} -> ${g}`));
    expect(outside).toEqual([]);
  });

  it('lets the storage and transport adapters reach consensus only through its core, ports and identity entries', () => {
    // The cluster admin API (libs/cluster-rpc/src/admin) is not an adapter: like the KV API, it calls the node.
    const adapters = FILES.filter(
      (f) => f.startsWith('libs/storage/') || (f.startsWith('libs/cluster-rpc/') && !f.startsWith('libs/cluster-rpc/src/admin/')),
    );
    const driver = adapters.flatMap((f) =>
      GRAPH.get(f)!
        .filter((g) => g.startsWith('libs/consensus/') && !g.startsWith('libs/consensus/src/core/') && !ENTRIES.includes(g))
        .map((g) => `${f} -> ${g}`),
    );
    expect(driver).toEqual([]);
  });

  it('keeps the consensus library in small files (about 400 lines at most; the core state machine raft.ts aside)', () => {
    const long = sources('libs/consensus')
      .filter((f) => f !== 'libs/consensus/src/core/raft.ts')
      .map((f) => ({ f, lines: readFileSync(join(ROOT, f), 'utf8').split('\n').length }))
      .filter(({ lines }) => lines > 420)
      .map(({ f, lines }) => `${f}: ${lines} lines`);
    expect(long).toEqual([]);
  });
});
