/**
 * Writes ordinary-words.txt from word lists of one word per line, such as Debian's wbritish and
 * wdutch packages (/usr/share/dict/british-english, /usr/share/dict/dutch):
 *
 *   npm run build && node dist/src/policy/domain/lexicon/build-ordinary-words.js \
 *     /usr/share/dict/british-english /usr/share/dict/dutch > src/policy/domain/lexicon/ordinary-words.txt
 *
 * Kept: the entries a list writes in lower case (a capitalised entry is a name or a proper noun),
 * of letters only (no possessives, no names such as O'Brien), folded as names are compared
 * (foldedForNames), of three to nine letters: a name word shorter than three
 * is never cut alone, and one longer than nine is seldom an ordinary word too.
 */
import { readFileSync } from 'node:fs';
import { foldedForNames } from '../mentions.js';

/** Ordinary words the lists write capitalised (months, days) or lack, that are names too. */
const ALSO_ORDINARY = ['april', 'june', 'july', 'august', 'sunday', 'christian', 'jean', 'rosa', 'constance', 'fletcher', 'glover', 'slater'];

const ENTRY = /^\p{Ll}[\p{L}\p{M}]*$/u;

const words = new Set<string>(ALSO_ORDINARY);
for (const file of process.argv.slice(2)) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const entry = line.trim();
    if (!ENTRY.test(entry)) continue;
    const folded = foldedForNames(entry);
    if (folded.length >= 3 && folded.length <= 9) words.add(folded);
  }
}
process.stdout.write(
  [
    '# Ordinary English and Dutch words, folded as names are compared (see build-ordinary-words.ts).',
    '# From the SCOWL word list (Debian wbritish 2020.12.07) and the OpenTaal word list (Debian',
    '# wdutch 2.20.19); their copyright and licences are in NOTICE.md next to this file.',
    ...[...words].sort(),
  ].join('\n') + '\n',
);
