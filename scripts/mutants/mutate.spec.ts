import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CATALOGUE } from './catalogue';
import { applyEdits, CatalogueError, occurrences } from './mutate';

const ROOT = join(__dirname, '..', '..');

describe('applyEdits', () => {
  const text = 'if (a === b) {\n  commit();\n}\n';

  it('replaces a search string that occurs exactly once', () => {
    expect(applyEdits(text, [{ search: 'a === b', replace: 'a <= b' }])).toBe('if (a <= b) {\n  commit();\n}\n');
  });

  it('applies several edits in order, each to the text the previous ones left', () => {
    const out = applyEdits(text, [
      { search: '  commit();\n', replace: '' },
      { search: '{\n}', replace: '{ skip(); }' },
    ]);
    expect(out).toBe('if (a === b) { skip(); }\n');
  });

  it.each([
    ['missing', 'a !== b', 0],
    ['ambiguous', 'a', 2],
  ])('refuses a %s search string, naming the count', (_name, search, count) => {
    expect(() => applyEdits('a === a', [{ search, replace: 'x' }], 'core.ts')).toThrow(CatalogueError);
    expect(() => applyEdits(text.replace('b', 'a'), [{ search, replace: 'x' }], 'core.ts')).toThrow(
      new RegExp(`core.ts: edit 1's search string .* occurs ${count} times \\(expected exactly once\\)`),
    );
  });

  it('checks the exactly-once rule after the edits before it', () => {
    const edits = [
      { search: 'commit();', replace: 'commit(); commit();' },
      { search: 'commit();', replace: 'x' },
    ];
    expect(() => applyEdits(text, edits)).toThrow(/edit 2's search string "commit\(\);" occurs 2 times/);
  });

  it('refuses an edit that changes nothing, and a mutant without edits', () => {
    expect(() => applyEdits(text, [{ search: 'a === b', replace: 'a === b' }])).toThrow(/changes nothing/);
    expect(() => applyEdits(text, [])).toThrow(/at least one edit/);
  });

  it('counts non-overlapping occurrences', () => {
    expect(occurrences('aaaa', 'aa')).toBe(2);
    expect(occurrences('abc', '')).toBe(0);
  });
});

describe('the catalogue', () => {
  it('has unique ids and at least one kill command per mutant', () => {
    const ids = CATALOGUE.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const m of CATALOGUE) expect(m.kill.length).toBeGreaterThan(0);
  });

  // The point of exact search strings: a refactoring that moves the mutated code fails here, at once,
  // instead of leaving a mutant that silently tests nothing.
  it.each(CATALOGUE.map((m) => [m.id, m] as const))('%s still applies to the current sources', (_id, m) => {
    const source = readFileSync(join(ROOT, m.file), 'utf8');
    expect(applyEdits(source, m.edits, m.id)).not.toBe(source);
  });
});
