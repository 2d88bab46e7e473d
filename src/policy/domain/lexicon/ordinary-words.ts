import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Beside this module: in src/, and in dist/ where `npm run build` copies it. */
const LIST = new URL('./ordinary-words.txt', import.meta.url);

/** The lengths of the words the list holds (build-ordinary-words.ts keeps no others). */
export const ORDINARY_WORD_LENGTHS = { shortest: 3, longest: 9 } as const;

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
  let text: string;
  try {
    text = readFileSync(LIST, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new Error(`${fileURLToPath(LIST)} is missing: \`npm run build\` copies it beside the built module`, { cause: error });
  }
  return new Set(text.split('\n').filter((word) => word !== '' && !word.startsWith('#')));
}
