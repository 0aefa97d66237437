import { Edit } from './catalogue';

/** A catalogue entry that no longer matches the code: its search string is missing or ambiguous. */
export class CatalogueError extends Error {}

/** How many times `search` occurs in `text` (non-overlapping). */
export function occurrences(text: string, search: string): number {
  if (search === '') return 0;
  let n = 0;
  for (let at = text.indexOf(search); at !== -1; at = text.indexOf(search, at + search.length)) n++;
  return n;
}

/**
 * Applies `edits` to `text` in order. Each search string must occur exactly once in the text as it is when
 * its turn comes; a CatalogueError names the edit and the count otherwise.
 */
export function applyEdits(text: string, edits: readonly Edit[], where = 'file'): string {
  if (edits.length === 0) throw new CatalogueError(`${where}: a mutant needs at least one edit`);
  edits.forEach((edit, k) => {
    const n = occurrences(text, edit.search);
    if (n !== 1) {
      const shown = JSON.stringify(edit.search.length > 80 ? `${edit.search.slice(0, 77)}...` : edit.search);
      throw new CatalogueError(`${where}: edit ${k + 1}'s search string ${shown} occurs ${n} times (expected exactly once)`);
    }
    if (edit.search === edit.replace) throw new CatalogueError(`${where}: edit ${k + 1} changes nothing`);
    const at = text.indexOf(edit.search);
    text = text.slice(0, at) + edit.replace + text.slice(at + edit.search.length);
  });
  return text;
}
