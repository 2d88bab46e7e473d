import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIST = join('src', 'policy', 'domain', 'lexicon', 'ordinary-words.txt');

let ordinaryWords: ReadonlySet<string> | undefined;

/**
 * Whether a word, folded as names are compared (lower case, no marks), is an ordinary English or
 * Dutch word of three to nine letters (ordinary-words.txt, about 135,000 words, read on first use
 * or at the gateway's start).
 * A name word that is one ("Will", "Day", "Bakker", "award") may just be the word.
 */
export function isOrdinaryWord(folded: string): boolean {
  ordinaryWords ??= readOrdinaryWords();
  return ordinaryWords.has(folded);
}

/** Reads the list now: at the gateway's start rather than in its first decision. */
export function preloadOrdinaryWords(): void {
  ordinaryWords ??= readOrdinaryWords();
}

function readOrdinaryWords(): ReadonlySet<string> {
  const words = readFileSync(listPath(), 'utf8').split('\n');
  return new Set(words.filter((word) => word !== '' && !word.startsWith('#')));
}

/** The list in the source tree, found from here whether this runs from src/ or from its build in dist/. */
function listPath(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, LIST);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`${LIST} not found above the policy module`);
  }
}
