/**
 * Writes ordinary-words.txt from word lists of one word per line, such as Debian's wbritish and
 * wdutch packages (/usr/share/dict/british-english, /usr/share/dict/dutch):
 *
 *   npm run build && node dist/src/policy/domain/lexicon/build-ordinary-words.js \
 *     /usr/share/dict/british-english /usr/share/dict/dutch > src/policy/domain/lexicon/ordinary-words.txt
 *
 * Kept: the entries a list writes in lower case, of letters only (no possessives, no names such as
 * O'Brien), folded as names are compared (foldedForNames), of three to nine letters (a name word
 * shorter than three is never cut alone, one longer than nine is seldom an ordinary word too), but
 * for those a list also writes capitalised, as a name or a proper noun (john, kees, mulder, day),
 * unless ALSO_ORDINARY keeps them: a name taken for a word crosses, a word taken for a name is cut.
 */
import { readFileSync } from 'node:fs';
import { foldedForNames } from '../mentions.js';
import { ORDINARY_WORD_LENGTHS } from './ordinary-words.js';

/**
 * Words that are names too but so common as words that a name word equal to one is taken for the
 * word outside a sentence ("Will you", "Mark your calendars", "Groot nieuws", "have a great day"),
 * though the lists hold them capitalised too. Reviewed by hand.
 */
const ALSO_ORDINARY = [
  'across akker along amber amend april archer art ash august augustus autumn award baker bakker',
  'banks bas basil bay beach beek beer bell ben berg bergen best bill bird bishop black blauw bloem',
  'bob boer bok bond bos brook brooks brouwer brown brug bruggen bruin buck bud bull burns bush',
  'butler carol carpenter cash chambers chance charity chase chip christian church clay clean cliff',
  'colt constance cook cooper crane cross crystal daisy dale dam das dash dawn day dean destiny',
  'dick dijk don dot drake drew duke dusty earl east eve faith felicity field finch fisher fletcher',
  'fleur floor ford forest fox frank frost gale gates gene ginger glover golden gouden graaf grace',
  'grant gray green grey groen groot guy haan haas hale hall harm harmony hart hawk hay hazel head',
  'heath heather heer herder hert hill hoek hof holiday holly hond honey hoop hope house huis hunt',
  'hunter iris ivy jack jade jager jan jasmine jay jean jet job jong joy juli july june juni kat',
  'kerk king kit klein knecht knight koe kok koning korte koster kraai kramer kuiper laan lake lamb',
  'lance lane lange law lee leeuw lente lief liefde lies light lily linden little lock long lot',
  'love maan major march mark marsh mason max may meer mees meester mei melody mercy miles miller',
  'mills misty mol molenaar moon more moss muis mus nick nightingale noble north oak olive otter',
  'oude paard page park pat patience peace pearl penny pike pool poort poppy porter post potter',
  'power price prins prudence raaf rain ray read ree reed rice rich ridge river rivers rob robin',
  'rock rood roos root rosa rose ruby ruiter rusty sage salmon sandy schaap schipper share sharp',
  'shepherd short skip sky slager slater small smit smith snijder snow sol south sparrow spring',
  'star steel ster sterling stern stier stock stone storm stormy street strong sue summer summers',
  'sunday sunny swan sweet swift temple thatcher thorn ties tower track trinity true tuin turner',
  'uil unity valk veen verity vink violet visser vogel vos wade wal walker wall ward warren water',
  'waters weaver weg weide well wells west white wil wild will willow wind wing winter wise wit',
  'wolf wood woods wouden wren young zanger zee zomer zon zwaan zwart',
]
  .join(' ')
  .split(' ');

const ENTRY = /^\p{Ll}[\p{L}\p{M}]*$/u;

const CAPITALISED = /^\p{Lu}[\p{L}\p{M}]*$/u;

const lowerCase = new Set<string>();
// A capitalised entry is a name or a proper noun (John, Thomas, Kees, Mulder): the same word in lower case is no ordinary one here.
const names = new Set<string>();
for (const file of process.argv.slice(2)) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const entry = line.trim();
    if (ENTRY.test(entry)) lowerCase.add(foldedForNames(entry));
    else if (CAPITALISED.test(entry)) names.add(foldedForNames(entry));
  }
}
// With their forms in s the lists hold in lower case (marks, bells), read as a genitive otherwise.
const words = new Set<string>(ALSO_ORDINARY.flatMap((word) => (lowerCase.has(`${word}s`) ? [word, `${word}s`] : [word])));
for (const word of lowerCase) if (word.length >= ORDINARY_WORD_LENGTHS.shortest && word.length <= ORDINARY_WORD_LENGTHS.longest && !names.has(word)) words.add(word);
process.stdout.write(
  [
    '# Ordinary English and Dutch words, folded as names are compared (see build-ordinary-words.ts).',
    '# From the SCOWL word list (Debian wbritish 2020.12.07) and the OpenTaal word list (Debian',
    '# wdutch 2.20.19); their copyright and licences are in NOTICE.md next to this file.',
    ...[...words].sort(),
  ].join('\n') + '\n',
);
