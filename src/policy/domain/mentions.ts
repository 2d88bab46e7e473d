import { CodeUnitOrigins } from './code-unit-origins.js';
import { isOrdinaryWord, ORDINARY_WORD_LENGTHS } from './lexicon/ordinary-words.js';

/** What replaces the name of someone who did not consent to it crossing. */
export const PERSON_PLACEHOLDER = '[person]';
/** What replaces it inside an e-mail address: a word that leaves the address one, for the e-mail recogniser to judge. */
const PERSON_IN_AN_ADDRESS = 'person';

/** Someone whose name must not cross, and where tags put it in the text. */
export interface PersonToCut {
  name: string;
  /** Offsets and lengths as the post gives them (UTF-16 code units; code points from some integrations). */
  tags: readonly { offset: number; length: number }[];
  /** The post's author: the post shows them without a tag, so their name words are them wherever they stand (but for ordinary words). */
  author?: boolean;
}

/** The shortest start of a name's word a tag may show for it (Ed, Li are whole names; Piet starts Pieter). */
const SHORTENED_NAME_MIN = 3;

/** Name particles: no name on their own, words of their own (Van, Der) too often to be cut alone, and optional in a handle. */
const PARTICLES: ReadonlySet<string> = new Set(['de', 'da', 'di', 'du', 'le', 'la', 'el', 'al', 'te', 'van', 'von', 'der', 'den', 'ter', 'ten', 'het', 'des', 'del', 'della', 'dos', 'das', 'les', 'bin', 'ibn', 'abu', 'mac']);

/** Letters of scripts that separate words with spaces: a name written in them matches only as whole words. */
const SPACED_SCRIPT = /[\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}\p{N}]/u;
const WORD_CHARACTER = /[\p{L}\p{N}]/u;
const LETTER = /\p{L}/u;
const DROPPED_FOR_NAMES = /^[\p{M}\p{Cf}\p{Default_Ignorable_Code_Point}]$/u;
const CONTROL = /^\p{Cc}$/u;
const BLANK = /^[\p{White_Space}\p{Pd}]$/u;
const APOSTROPHES = /[\u2018\u2019\u02BC\u0060\u00B4]/g;
/** Letters that compatibility decomposition leaves whole, read as the letters a keyboard without them types (ß as the ss of GROSS, ł in Łukasz as l). */
const UNDECOMPOSED = /[ßłıøđðæœħŀ]/g;
const UNDECOMPOSED_AS: Readonly<Record<string, string>> = { ß: 'ss', ł: 'l', ı: 'i', ø: 'o', đ: 'd', ð: 'd', æ: 'ae', œ: 'oe', ħ: 'h', ŀ: 'l' };

/**
 * Replaces, with PERSON_PLACEHOLDER, every place the text shows the name of one of `people`:
 * - where a tag points at text that reads as the name (readsAsName), at the offsets as given or,
 *   should those not point at it, as code points (an integration that counts characters so);
 * - wherever else the name appears as a whole word, or what a tag showed of it (a first name), in
 *   any case and as a reader sees it: with or without accents, in full-width letters, with
 *   invisible characters inside, any spacing or line break between its words, another apostrophe,
 *   a genitive s after a name of more than one word (Pieter Jansens auto), or with the first name
 *   as an initial (P. Jansen);
 * - written as a handle: its words joined, with or without dots or underscores, particles or not,
 *   the first as an initial or whole, digits after (@pieter.jansen, #PieterJansen, pjansen87);
 * - each word of the name of three or more letters where it stands capitalised inside a sentence
 *   ("Thanks Pieter", "met Jansen", "Dhr. P. Jansen"), but for particles such as van or der, and
 *   months beside a number ("vanaf Jan 2026", "on 3 May");
 * - and such a word elsewhere, at the start of a sentence or line, in lower case, as a part of
 *   a hashtag or handle in camel case, or between ordinary words alone in one written in one case
 *   ("Pieter opened it", "groeten, pieter", "#BedanktPieter", "#bedanktpieter", "#TEAMPIETER"),
 *   only when the text shows that person in one of the ways above too (the author: when it stands
 *   alone on its line, a signature) and the word is no ordinary English or Dutch word
 *   (isOrdinaryWord): there a word is too often just a word ("Will you", "Mark your calendars",
 *   "Groot nieuws", "have a great day").
 * Finds that overlap, or that only a space parts, become one placeholder: a tag that shows a first
 * name is cut whole with the surname typed after it. Inside an e-mail address that `emailAddresses`
 * finds (pieter.jansen@example.org) the name becomes PERSON_IN_AN_ADDRESS (person@example.org): the
 * address stays one for the recognisers that run after, and a policy that denies a share for an
 * address still sees it, while the name is gone whatever they do.
 */
export function cutNames(text: string, people: readonly PersonToCut[], emailAddresses?: (text: string) => readonly Span[]): { text: string; count: number } {
  if (people.length === 0) return { text, count: 0 };
  const view = nameView(text);
  const tags = hashtagsAndHandles(text);
  const places: Span[] = [];
  for (const person of people) for (const place of placesShowing(person, text, view, tags)) places.push(place);
  if (places.length === 0) return { text, count: 0 };
  // The recogniser reads the whole text: only asked when a find stands in a run of characters holding an @.
  const addresses = emailAddresses && places.some((place) => inARunWithAnAt(text, place)) ? emailAddresses(text) : [];
  const addressOf = (span: Span) => addresses.findIndex((address) => address.start <= span.start && span.end <= address.end);
  // A name and an address after it (Anna de Vries, anna.devries@…) stay two cuts: one joined cut would break the address.
  const cuts = merged(places, text, addressOf);
  const parts: string[] = [];
  let copiedTo = 0;
  for (const cut of cuts) {
    parts.push(text.slice(copiedTo, cut.start), addressOf(cut) >= 0 ? PERSON_IN_AN_ADDRESS : PERSON_PLACEHOLDER);
    copiedTo = cut.end;
  }
  parts.push(text.slice(copiedTo));
  return { text: parts.join(''), count: cuts.length };
}

/** Whether nothing but blanks and punctuation shares the span's line (a signature: "Groeten,\nPieter"). */
function aloneOnItsLine(text: string, span: Span): boolean {
  const lineStart = Math.max(text.lastIndexOf('\n', span.start - 1) + 1, 0);
  const lineEnd = text.indexOf('\n', span.end);
  const rest = text.slice(lineStart, span.start) + text.slice(span.end, lineEnd === -1 ? text.length : lineEnd);
  return !/[\p{L}\p{N}]/u.test(rest);
}

/** Whether an @ stands between the blanks around the span: where an e-mail address could hold it. */
function inARunWithAnAt(text: string, span: Span): boolean {
  for (let i = span.start - 1; i >= 0 && !/\s/u.test(text[i]!); i--) if (text[i] === '@') return true;
  for (let i = span.end; i < text.length && !/\s/u.test(text[i]!); i++) if (text[i] === '@') return true;
  return false;
}

/** Every place the text shows one person's name, in the ways cutNames lists. */
function placesShowing(person: PersonToCut, text: string, view: NameView, tags: HashtagsAndHandles): Span[] {
  // Each word as written, and folded; a double name (Anne-Marie) folds to its halves.
  const written = person.name.trim().split(/\s+/u).map((word) => ({ word, folded: foldedWords(word) }));
  const nameWords = ([] as string[]).concat(...written.map((w) => w.folded));
  if (nameWords.length === 0) return [];
  const places: Span[] = [];
  const forms = new Map<string, readonly string[]>([[nameWords.join(' '), nameWords]]);
  for (const tag of person.tags) {
    const shown = tagSpan(text, tag, nameWords);
    if (!shown) continue;
    places.push(shown.span);
    forms.set(shown.words.join(' '), shown.words);
  }
  const surname = nameWords.slice(written[0]!.folded.length);
  if (surname.length > 0) {
    const withInitial = [`${String.fromCodePoint(nameWords[0]!.codePointAt(0)!)}.`, ...surname];
    forms.set(withInitial.join(' '), withInitial);
  }
  for (const words of forms.values()) places.push(...occurrences(view, words));
  places.push(...handles(view, nameWords));
  // Of the given names: Kees de Groot has no initial D (vitamine D. Groot nieuws), Will Green no G (Hall G. Will you).
  const givenNames = nameWords.filter((word) => !PARTICLES.has(word)).slice(0, -1);
  const initials = new Set(givenNames.map((word) => String.fromCodePoint(word.codePointAt(0)!)));
  const capitalisedInsideASentence = (place: Span) => !startsLowerCase(text.slice(place.start, place.end)) && !startsASentence(text, place.start, initials);
  const elsewhere: Span[] = [];
  const camelCaseWords = new Set<string>();
  for (const words of wordsOfName(written)) {
    const ordinary = words.length === 1 && isOrdinaryWord(words[0]!);
    if (words.length === 1 && !ordinary) camelCaseWords.add(words[0]!);
    const month = words.length === 1 && MONTHS.has(words[0]!);
    for (const place of occurrences(view, words)) {
      if (month && besideANumber(text, place)) continue;
      if (capitalisedInsideASentence(place)) places.push(withInitialsBefore(text, place, initials));
      // Capitalised with an apostrophe s (Ward's team) it is a name even where the word is an ordinary one.
      else if (!ordinary || (!startsLowerCase(text.slice(place.start, place.end)) && POSSESSIVE_AFTER.test(text.slice(place.end, place.end + 3)))) elsewhere.push(place);
    }
    // The Dutch genitive, without an apostrophe (Pieters fiets), where that is no word of its own (Marks).
    const genitive = words.length === 1 ? `${words[0]!}s` : undefined;
    if (genitive !== undefined && !isOrdinaryWord(genitive)) {
      for (const place of occurrences(view, [genitive])) {
        // Pieters fiets, not Annelies Pieters or Douwe Egberts: a surname of its own follows a capitalised name, a genitive comes before a noun.
        if (!/^\s+\p{Ll}/u.test(text.slice(place.end, place.end + 3)) || /\p{Lu}[\p{L}\p{M}]*\s+$/u.test(text.slice(Math.max(0, place.start - 40), place.start))) continue;
        if (capitalisedInsideASentence(place)) places.push(place);
        else elsewhere.push(place);
      }
    }
  }
  for (const part of tags.camelCaseParts) if (camelCaseWords.has(part.read)) elsewhere.push(part);
  for (const tag of tags.inOneCase) for (const place of tag.nameWordsBetweenOrdinaryWords(camelCaseWords)) elsewhere.push(place);
  // A word that is no ordinary word, where the text also shows the person, is them; the author's alone on its line signs the post.
  if (places.length > 0) places.push(...elsewhere);
  else if (person.author) places.push(...elsewhere.filter((place) => aloneOnItsLine(text, place)));
  return places;
}

/** A hashtag or handle, and the capitalised parts camel case writes it in (#BedanktPieter, @TeamJansen). */
const TAG_TOKEN = /[#@][\p{L}\p{M}\p{N}_]+/gu;
/** A hashtag or handle (without its # or @) that camel case does not part: all in lower case or capitals, or capitalised only at its start. */
const IN_ONE_CASE = /^(?:[^\p{Lu}]+|\p{Lu}[^\p{Lu}]*|[^\p{Ll}]+)$/u;
const CAPITALISED_PART = /\p{Lu}[\p{Ll}\p{M}]*/gu;
// eslint-disable-next-line no-control-regex -- ASCII is what it tells apart
const NOT_ASCII = /[^\x00-\x7f]/;

interface TagPart extends Span {
  /** The part folded as names are compared. */
  read: string;
}

/** The text's hashtags and handles, read once for every person. */
interface HashtagsAndHandles {
  /** The capitalised parts of those in camel case (Bedankt and Pieter of #BedanktPieter). */
  camelCaseParts: readonly TagPart[];
  /** Those in one case (#bedanktpieter, #BEDANKTPIETER), without their # or @; only those that fold letter for letter, so that a place in `read` is one in the text. */
  inOneCase: readonly TagInOneCase[];
}

const NO_TAGS: HashtagsAndHandles = { camelCaseParts: [], inOneCase: [] };

function hashtagsAndHandles(text: string): HashtagsAndHandles {
  if (!text.includes('#') && !text.includes('@')) return NO_TAGS;
  const camelCaseParts: TagPart[] = [];
  const inOneCase: TagInOneCase[] = [];
  const read = (written: string) => (NOT_ASCII.test(written) ? foldedForNames(written) : written.toLowerCase());
  // exec on the shared expressions rather than matchAll, which copies its expression on every call.
  TAG_TOKEN.lastIndex = 0;
  for (let token = TAG_TOKEN.exec(text); token; token = TAG_TOKEN.exec(text)) {
    const tag = token[0].slice(1);
    if (IN_ONE_CASE.test(tag)) {
      const folded = read(tag);
      if (folded.length === tag.length) inOneCase.push(new TagInOneCase(token.index + 1, folded));
    }
    CAPITALISED_PART.lastIndex = 0;
    for (let part = CAPITALISED_PART.exec(token[0]); part; part = CAPITALISED_PART.exec(token[0])) {
      const start = token.index + part.index;
      camelCaseParts.push({ start, end: start + part[0].length, read: read(part[0]) });
    }
  }
  return { camelCaseParts, inOneCase };
}

const DIGIT = /\p{N}/u;

/** A hashtag or handle written in one case (#bedanktpieter, #TEAMPIETER), without its # or @, folded letter for letter. */
class TagInOneCase implements TagPart {
  readonly end: number;
  /** Where its letters split into ordinary words, worked out once for every person, when a name word first stands in it. */
  private splits?: { fromStart: readonly boolean[]; toEnd: readonly boolean[] };

  constructor(
    readonly start: number,
    readonly read: string,
  ) {
    this.end = start + read.length;
  }

  /**
   * Where one of `nameWords` stands in the tag between ordinary words alone (#bedanktpieter,
   * #TEAMPIETER, #pieterbedankt; digits may end it): there camel case marks no part, so the
   * ordinary words around the name are what tell it apart. A tag that spells the name word and
   * nothing else is a whole word, found as one.
   */
  nameWordsBetweenOrdinaryWords(nameWords: ReadonlySet<string>): Span[] {
    const found: Span[] = [];
    for (const word of nameWords) {
      for (let at = this.read.indexOf(word); at !== -1; at = this.read.indexOf(word, at + 1)) {
        const end = at + word.length;
        if (at === 0 && end === this.read.length) continue;
        this.splits ??= ordinaryWordSplits(this.read);
        if (this.splits.fromStart[at] && this.splits.toEnd[end]) found.push({ start: this.start + at, end: this.start + end });
      }
    }
    return found;
  }
}

/**
 * For each place in the letters, whether those before it are ordinary words one after another
 * (`fromStart`), and whether those from it on are, digits allowed at the end (`toEnd`); no letters
 * are. Each place looks back or ahead only as far as the longest word of the list: linear in the
 * letters, however long a hostile tag.
 */
function ordinaryWordSplits(letters: string): { fromStart: boolean[]; toEnd: boolean[] } {
  const { shortest, longest } = ORDINARY_WORD_LENGTHS;
  let digitsFrom = letters.length;
  while (digitsFrom > 0 && DIGIT.test(letters[digitsFrom - 1]!)) digitsFrom--;
  // Past `longest` places without a split, no later place can split: the rest stays false.
  const fromStart = new Array<boolean>(letters.length + 1).fill(false);
  fromStart[0] = true;
  for (let end = shortest, lastSplit = 0; end <= letters.length && end - lastSplit <= longest; end++) {
    for (let start = Math.max(0, end - longest); start <= end - shortest && !fromStart[end]; start++) fromStart[end] = fromStart[start]! && isOrdinaryWord(letters.slice(start, end));
    if (fromStart[end]) lastSplit = end;
  }
  const toEnd = new Array<boolean>(letters.length + 1).fill(false);
  for (let start = digitsFrom; start <= letters.length; start++) toEnd[start] = true;
  for (let start = digitsFrom - shortest, lastSplit = digitsFrom; start >= 0 && lastSplit - start <= longest; start--) {
    for (let end = start + shortest; end <= Math.min(digitsFrom, start + longest) && !toEnd[start]; end++) toEnd[start] = toEnd[end]! && isOrdinaryWord(letters.slice(start, end));
    if (toEnd[start]) lastSplit = start;
  }
  return { fromStart, toEnd };
}

const POSSESSIVE_AFTER = /^['’]s(?![\p{L}\p{N}])/u;

/** Months and their abbreviations that are names too (Jan, May, April): beside a number they date something (12 Jan, May 2026). */
const MONTHS: ReadonlySet<string> = new Set(['jan', 'januari', 'january', 'mei', 'may', 'april', 'juni', 'june', 'juli', 'july', 'augustus', 'august', 'aug']);

/** Whether a number stands right before or after the span, a space or a full stop between (12 Jan, Jan. 2026). */
function besideANumber(text: string, span: Span): boolean {
  return /^\.?\s{1,2}\d/u.test(text.slice(span.end, span.end + 4)) || /\d(?:\s{1,2}|\.)$/u.test(text.slice(Math.max(0, span.start - 3), span.start));
}

/**
 * The words of a name that are cut on their own, folded: a double name whole (overlapping finds
 * merge) and each of its halves, of three or more letters, not particles, not written in lower case.
 */
function wordsOfName(written: readonly { word: string; folded: readonly string[] }[]): Iterable<readonly string[]> {
  // Keyed by their text: a name may repeat a word, and each is searched for once.
  const words = new Map<string, readonly string[]>();
  for (const { word, folded } of written) {
    if (startsLowerCase(word)) continue;
    if (folded.length > 1 && word.length >= SHORTENED_NAME_MIN) words.set(folded.join(' '), folded);
    for (const half of folded) if (half.length >= SHORTENED_NAME_MIN && !PARTICLES.has(half)) words.set(half, [half]);
  }
  return words.values();
}

/**
 * Whether the words a tag covers, folded, are its name as a post may show it: in any case, with or
 * without accents, in compatibility forms (full-width letters), with invisible characters inside or
 * other apostrophes, some of its words, or the start of one (Piet for Pieter). `ofName`: the name's words, folded.
 */
function showsNameWords(shownWords: readonly string[], ofName: readonly string[]): boolean {
  const shows = (word: string) => ofName.some((part) => part === word || (word.length >= SHORTENED_NAME_MIN && part.startsWith(word)));
  // A tag shows the name or part of it, never more words than it has: a tag over a whole paragraph is no name.
  return shownWords.length > 0 && shownWords.length <= ofName.length && shownWords.every(shows);
}

export interface Span {
  start: number;
  end: number;
}

/**
 * Where a tag shows the name, and the words it shows there, folded: at its offsets in code units,
 * else read as code points; undefined when neither reads as the name.
 */
function tagSpan(text: string, tag: { offset: number; length: number }, nameWords: readonly string[]): { span: Span; words: readonly string[] } | undefined {
  const shownAt = (given: Span | undefined) => {
    if (given === undefined || given.start < 0 || given.end <= given.start || given.end > text.length) return undefined;
    // Offsets one off take in the space beside the name: the cut leaves it.
    const span = { ...given };
    while (span.start < span.end && BLANK.test(text[span.start]!)) span.start++;
    while (span.end > span.start && BLANK.test(text[span.end - 1]!)) span.end--;
    const words = foldedWords(text.slice(span.start, span.end));
    return showsNameWords(words, nameWords) ? { span, words } : undefined;
  };
  return shownAt({ start: tag.offset, end: tag.offset + tag.length }) ?? shownAt(codePointSpan(text, tag.offset, tag.length));
}

function codePointSpan(text: string, offset: number, length: number): Span | undefined {
  if (offset < 0 || length <= 0) return undefined;
  let unit = 0;
  let start = -1;
  for (let point = 0; unit <= text.length; point++) {
    if (point === offset) start = unit;
    if (point === offset + length) return start === unit ? undefined : { start, end: unit };
    if (unit === text.length) return undefined;
    unit += text.codePointAt(unit)! > 0xffff ? 2 : 1;
  }
  return undefined;
}

/**
 * Text as names are compared, with where each of its code units came from: compatibility-
 * decomposed, lower case, without marks, invisible or control characters, apostrophes alike, and
 * spaces, line breaks and dashes as spaces. A dropped character belongs to the one before it.
 * `offsets` is absent when every code unit is read from the one at the same offset, as in most
 * posts (lower-casing and blanks change no length).
 */
interface NameView {
  text: string;
  offsets?: { starts: Uint32Array; ends: Uint32Array };
}

/** Outside ASCII, each code point is folded on its own; ASCII runs natively, lower case and blanks keeping their length. */
const OUTSIDE_ASCII = /[\u0080-\uffff]/g;
const ASCII_BLANK = /[\t\n\v\f\r-]/g;
/** Control characters other than tabs and line breaks: dropped, so the view is shorter than the text. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const DROPPED_CONTROL = /[\x00-\x08\x0e-\x1f\x7f-\x9f]/;

function nameView(text: string): NameView {
  if (DROPPED_CONTROL.test(text)) return nameViewWithOffsets(text);
  // First as if nothing changed length, as in most posts: no offsets to keep.
  let view = '';
  let copiedTo = 0;
  OUTSIDE_ASCII.lastIndex = 0;
  for (let match = OUTSIDE_ASCII.exec(text); match; match = OUTSIDE_ASCII.exec(text)) {
    // A surrogate pair is one code point: read whole.
    const width = text.codePointAt(match.index)! > 0xffff ? 2 : 1;
    const original = text.slice(match.index, match.index + width);
    const read = foldForNames(original);
    if (read.length !== width) return nameViewWithOffsets(text);
    view += asciiForNames(text.slice(copiedTo, match.index)) + read;
    copiedTo = match.index + width;
    OUTSIDE_ASCII.lastIndex = copiedTo;
  }
  return { text: view + asciiForNames(text.slice(copiedTo)) };
}

function asciiForNames(text: string): string {
  return text.toLowerCase().replace(ASCII_BLANK, ' ');
}

function nameViewWithOffsets(text: string): NameView {
  const parts: string[] = [];
  const origins = new CodeUnitOrigins(text.length);
  for (let i = 0; i < text.length; ) {
    const width = text.codePointAt(i)! > 0xffff ? 2 : 1;
    const read = foldForNames(text.slice(i, i + width));
    if (read === '') origins.extendLast(i + width);
    else {
      parts.push(read);
      origins.add(read.length, i, i + width);
    }
    i += width;
  }
  return { text: parts.join(''), offsets: origins.table() };
}

/** A word folded as names are compared: what the lexicon of ordinary words is written in. */
export function foldedForNames(word: string): string {
  return nameView(word).text;
}

/** The words of a name, or of what a tag shows, folded. Not cached: names are personal data, kept no longer than a decision. */
function foldedWords(name: string): readonly string[] {
  const folded = nameView(name).text;
  // Most are one word: spared splitting.
  if (!folded.includes(' ')) return folded === '' ? [] : [folded];
  return folded.split(' ').filter((word) => word !== '');
}

/** Folds of the characters outside ASCII seen so far; bounded, as a hostile text may hold very many distinct ones. */
const nameFolds = new Map<string, string>();
const MAX_CACHED_FOLDS = 8192;

function foldForNames(character: string): string {
  const code = character.charCodeAt(0);
  if (code < 0x80) {
    if (code >= 0x41 && code <= 0x5a) return String.fromCharCode(code + 0x20);
    if (code === 0x2d || (code >= 0x09 && code <= 0x0d)) return ' ';
    return code < 0x20 || code === 0x7f ? '' : character;
  }
  let fold = nameFolds.get(character);
  if (fold === undefined) {
    fold = BLANK.test(character)
      ? ' '
      : [...character.normalize('NFKD').toLowerCase().replace(UNDECOMPOSED, (letter) => UNDECOMPOSED_AS[letter]!).normalize('NFKD')]
          .filter((c) => !DROPPED_FOR_NAMES.test(c) && !CONTROL.test(c))
          .join('')
          .replace(APOSTROPHES, "'");
    if (nameFolds.size < MAX_CACHED_FOLDS) nameFolds.set(character, fold);
  }
  return fold;
}

/** Where folded `words` appear in the text as whole words, any blanks between them, mapped back to the text's code units. */
function occurrences(view: NameView, words: readonly string[]): Span[] {
  if (words.length === 0) return [];
  const first = words[0]!;
  const last = words.at(-1)!;
  const wholeWordBefore = SPACED_SCRIPT.test(first[0]!);
  const wholeWordAfter = SPACED_SCRIPT.test(last.at(-1)!);
  const found: Span[] = [];
  for (let at = view.text.indexOf(first); at !== -1; at = view.text.indexOf(first, at + 1)) {
    let end = endOfWordsAt(view.text, at, words);
    if (end === undefined) continue;
    if (wholeWordBefore && at > 0 && WORD_CHARACTER.test(view.text[at - 1]!)) continue;
    // A genitive s for a name of more words (Pieter Jansens auto); after one word it is too often another word (Marks, Jans).
    if (words.length > 1 && wholeWordAfter && view.text[end] === 's' && !WORD_CHARACTER.test(view.text[end + 1] ?? ' ')) end++;
    if (wholeWordAfter && end < view.text.length && WORD_CHARACTER.test(view.text[end]!)) continue;
    found.push(textSpan(view, at, end));
  }
  return found;
}

/** The text's code units that a stretch of the view was read from. */
function textSpan(view: NameView, start: number, end: number): Span {
  return view.offsets ? { start: view.offsets.starts[start]!, end: view.offsets.ends[end - 1]! } : { start, end };
}

/** What may join the words of a name in a handle (pieter.jansen, pieter_jansen); a dash is a blank in the view, found as the name. */
const HANDLE_JOINS = '._';
const ASCII_DIGIT = /[0-9]/;

/**
 * Where the text shows a name of two or more words as a handle: its words joined, with or without
 * a dot or underscore between them, particles or not, the first word whole or as its initial
 * when the rest has four or more letters, digits after, joined or not.
 */
function handles(view: NameView, nameWords: readonly string[]): Span[] {
  const words = nameWords.filter((word) => /\p{L}/u.test(word));
  // The longest word of every shape is one of the name's: where none touches another word or a join, there is no handle.
  if (words.length < 2 || !words.some((word) => word.length >= 2 && touchesAWordOrJoin(view.text, word))) return [];
  // Particles may be left out only where a word that is none follows the first (not for Ben Le: a handle is more than "ben").
  const particlesOptional = words.slice(1).some((word) => !PARTICLES.has(word));
  const shapes = handleShapes(words).filter((shape) => {
    // Too short a handle is too often something else; its longest word stands in the text touching another word or a join, or there is none.
    const longest = shape.reduce((a, b) => (b.length > a.length ? b : a));
    return shape.join('').length >= 5 && touchesAWordOrJoin(view.text, longest);
  });
  const found: Span[] = [];
  for (const shape of shapes) {
    const first = shape[0]!;
    for (let at = view.text.indexOf(first); at !== -1; at = view.text.indexOf(first, at + 1)) {
      if (at > 0 && (WORD_CHARACTER.test(view.text[at - 1]!) || view.text[at - 1] === '_')) continue;
      const end = handleEnds(view.text, at + first.length, shape, particlesOptional)
        .map((wordsEnd) => withDigitsAfter(view.text, wordsEnd))
        .find((end) => !WORD_CHARACTER.test(view.text[end] ?? ' ') && view.text[end] !== '_');
      // Joined without a dot or underscore, an initial and a surname may spell a word (a + ward, p + rice).
      if (end === undefined || isOrdinaryWord(view.text.slice(at, end))) continue;
      found.push(textSpan(view, at, end));
    }
  }
  return found;
}

/** Whether `word` stands somewhere in the view with a letter, digit, dot or underscore right before or after it, as in a handle. */
function touchesAWordOrJoin(view: string, word: string): boolean {
  const joinsOn = (character: string | undefined) => character !== undefined && (HANDLE_JOINS.includes(character) || WORD_CHARACTER.test(character));
  for (let at = view.indexOf(word); at !== -1; at = view.indexOf(word, at + 1)) if (joinsOn(view[at - 1]) || joinsOn(view[at + word.length])) return true;
  return false;
}

/** Names of more words than this are searched for as handles of all their words only, or with the first as its initial. */
const MAX_HANDLE_WORDS = 6;

/**
 * The ways a handle may write a name of two or more words (Pieter Jansen, Jan-Willem de Boer, Kees
 * van den Berg), each a list of folded words that follow one another with a join or none:
 * - all its words (pieterjansen, pieter.van.dijk), the first as an initial (pjansen);
 * - the initials of all but the surname (jwdeboer, amjansen for Anne-Marie Jansen);
 * - the first name with one later word, a middle name or a suffix left out, either way round, the
 *   (pieter.jansen for Pieter Jan Jansen, jansen.pieter); not with a single letter for a word
 *   (pieterj would take Sarah for Sara H.);
 * - the particles as their initials (kvdberg, kees.vd.berg), or the surname with its particles
 *   alone (devries);
 * and each without the apostrophes of its words (sean.obrien).
 */
function handleShapes(words: readonly string[]): (readonly string[])[] {
  const initial = (word: string) => /\p{L}/u.exec(word)?.[0] ?? '';
  const shapes: (readonly string[])[] = [words, [initial(words[0]!), ...words.slice(1)]];
  const core = words.filter((word) => !PARTICLES.has(word));
  if (core.length >= 2 && words.length <= MAX_HANDLE_WORDS) {
    const [first, ...later] = core as [string, ...string[]];
    const surnameAt = words.lastIndexOf(core.at(-1)!);
    if (core.length >= 3) shapes.push([...words.slice(0, surnameAt).map((word) => (PARTICLES.has(word) ? word : initial(word))), ...words.slice(surnameAt)]);
    for (const word of later) {
      if (core.length >= 3) shapes.push([first, word]);
      shapes.push([word, first]);
    }
    const particles = words.filter((word) => PARTICLES.has(word));
    if (particles.length > 0) for (const head of [first, initial(first)]) shapes.push([head, ...particles.map(initial), core.at(-1)!]);
    // The surname with the particles before it, as camel case writes it (DeVries).
    if (PARTICLES.has(words[surnameAt - 1] ?? '')) shapes.push(words.slice(words.findLastIndex((word, i) => i < surnameAt && !PARTICLES.has(word)) + 1));
  }
  const withoutApostrophes = shapes.filter((shape) => shape.some((word) => word.includes("'"))).map((shape) => shape.map((word) => word.replaceAll("'", '')));
  // A word of apostrophes alone ('t, a nickname in quotes) leaves nothing to look for: an empty word would be found everywhere.
  return [...shapes, ...withoutApostrophes].map((shape) => shape.filter((word) => word !== '')).filter((shape) => shape.length >= 2);
}

/**
 * Where a handle's words after the first may end when they follow at `at`, longest first: each
 * after a join or none, particles optional or not. The ends reached after each word are kept as a
 * set, so a name of many particles costs its words times their ends, not every way to skip them.
 */
function handleEnds(view: string, at: number, words: readonly string[], particlesOptional: boolean): number[] {
  let ends = [at];
  for (const word of words.slice(1)) {
    const next = new Set<number>();
    for (const from of ends) {
      const start = HANDLE_JOINS.includes(view[from] ?? ' ') ? from + 1 : from;
      if (view.startsWith(word, start)) next.add(start + word.length);
      if (particlesOptional && PARTICLES.has(word)) next.add(from);
    }
    if (next.size === 0) return [];
    ends = [...next];
  }
  return ends.sort((a, b) => b - a);
}

/** The end of a handle with the digits after it, joined or not (pieterjansen87, pieter_jansen_2). */
function withDigitsAfter(view: string, end: number): number {
  const digitsFrom = HANDLE_JOINS.includes(view[end] ?? ' ') && ASCII_DIGIT.test(view[end + 1] ?? '') ? end + 1 : end;
  let i = digitsFrom;
  while (ASCII_DIGIT.test(view[i] ?? '')) i++;
  return i > digitsFrom ? i : end;
}

/** Where the words end when they stand at `at` one after another, any run of blanks between them. */
function endOfWordsAt(view: string, at: number, words: readonly string[]): number | undefined {
  let i = at;
  for (const [n, word] of words.entries()) {
    if (n > 0) {
      if (view[i] !== ' ') return undefined;
      while (view[i] === ' ') i++;
    }
    if (!view.startsWith(word, i)) return undefined;
    i += word.length;
  }
  return i;
}

/** Ends a sentence, or a line. */
const SENTENCE_END = /[.!?…:;\n\r\u2028\u2029\u0085]/u;

/** Titles written before a name with a full stop that ends no sentence (Dhr. Jansen, Dr. Jansen, Gr. Pieter). */
const TITLES: ReadonlySet<string> = new Set(['dhr', 'mevr', 'mw', 'mej', 'mr', 'mrs', 'ms', 'mx', 'dr', 'drs', 'ir', 'ing', 'prof', 'ds', 'zr', 'br', 'fam', 'jr', 'sr', 'mgr', 'gr', 'capt', 'sgt', 'rev', 'col', 'lt', 'insp']);

/**
 * Whether nothing but blanks, quotes, brackets, markers and symbols stand between `at` and the start
 * of its sentence or line. A full stop after a title or after one of the person's `initials` (folded)
 * ends no sentence (Dhr. P. Jansen); after another letter it does (Plan B. Mark your calendars).
 */
function startsASentence(text: string, at: number, initials: ReadonlySet<string>): boolean {
  for (let i = at - 1; i >= 0; i--) {
    const character = text[i]!;
    if (character === '.' && abbreviationBefore(text, i, initials)) return false;
    if (SENTENCE_END.test(character)) return true;
    if (WORD_CHARACTER.test(character)) return false;
  }
  return true;
}

/** Whether the full stop at `dot` ends a title, one of the person's initials in capitals, or an abbreviated particle. */
function abbreviationBefore(text: string, dot: number, initials: ReadonlySet<string>): boolean {
  let start = dot;
  while (start > 0 && LETTER.test(text[start - 1]!)) start--;
  const word = text.slice(start, dot);
  // v. and d. abbreviate the particles van and der or den (K. v.d. Berg); o.a., e.g., i.s.m. are abbreviations of letters and full stops.
  if (word.length === 1) return startsLowerCase(word) ? word === 'v' || word === 'd' || text[start - 1] === '.' : initials.has(word.toLowerCase());
  return TITLES.has(word.toLowerCase());
}

/** An initial of the person and its full stop (P., J.W.): written before their surname, it belongs to the name. */
const INITIAL_BEFORE = /(?:^|[^\p{L}\p{N}.])((?:\p{Lu}\.\s?)+)((?:[\p{Ll}.]{1,6}\s)*)$/u;

/** The span grown back over the person's initials and the particles after them (J.W. de Boer, K. v.d. Berg). */
function withInitialsBefore(text: string, place: Span, initials: ReadonlySet<string>): Span {
  const preceding = text.slice(Math.max(0, place.start - 24), place.start);
  // No initial without a full stop: most places are spared the expression.
  const before = preceding.includes('.') ? INITIAL_BEFORE.exec(preceding) : null;
  if (!before) return place;
  const letters = before[1]!.match(/\p{Lu}/gu)!;
  const particles = before[2]!.trim().split(/\s+/u).filter((word) => word !== '');
  const aParticle = (word: string) => PARTICLES.has(word.replace(/\./g, '')) || /^(?:v\.?d\.?|vd|v)$/u.test(word);
  if (!letters.every((letter) => initials.has(letter.toLowerCase())) || !particles.every(aParticle)) return place;
  return { start: place.start - before[1]!.length - before[2]!.length, end: place.end };
}

/** Whether a word begins with a lower-case letter (a script without case never does). */
function startsLowerCase(word: string): boolean {
  const first = String.fromCodePoint(word.codePointAt(0) ?? 0x20);
  return first !== first.toUpperCase();
}

/** Only spaces, dashes or invisible characters: what stands between two words of one name. */
const WITHIN_A_NAME = /^[\s\p{Pd}\p{Cf}]*$/u;

/** The spans in text order, joined where they overlap, or where only a space parts them (Piet, then Jansen) and both are in the same e-mail address or in none. */
function merged(spans: Span[], text: string, addressOf: (span: Span) => number): Span[] {
  const cuts: Span[] = [];
  for (const span of [...spans].sort((a, b) => a.start - b.start || b.end - a.end)) {
    const last = cuts.at(-1);
    const joins = last && (span.start < last.end || (WITHIN_A_NAME.test(text.slice(last.end, span.start)) && addressOf(last) === addressOf(span)));
    if (last && joins) last.end = Math.max(last.end, span.end);
    else cuts.push({ ...span });
  }
  return cuts;
}
