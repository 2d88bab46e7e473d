import { contextBefore, contextPattern, continuesAsNumber, digitsOf, type Recogniser, type Span } from './context.js';

const BSN_CONTEXT = contextPattern({
  supporting: [
    'bsn', 'burgerservice', 'sofinummer', 'sofi-nummer', 'sofi nummer', 'persoonsnummer', 'citizen service', 'social security', 'fiscaal nummer',
    'fiscal number', 'national id',
  ],
  opposing: [
    '€', '$', '£', 'euro', ' eur ', ' eur.', 'bedrag', 'amount', 'budget', 'kosten', 'cost', 'omzet', 'revenue', 'prijs', 'price', 'totaal', 'total',
    'order', 'bestel', 'factuur', 'invoice', 'klantnummer', 'customer', 'ticket', 'tracking', 'referentie', 'reference', 'kenmerk',
    'dossier', 'kvk', 'btw', 'vat number', 'telefoon', 'phone', 'artikel', 'serienummer', 'serial', 'personeelsnummer', 'medewerkernummer',
    'employee',
  ],
});

/**
 * Nine digits (eight with the leading zero dropped) compact, or grouped 3-3-3 or 4-2-3 with dots,
 * spaces or dashes. Group 1 is set for the 4-2-3 form with dots or spaces (group 2 is its
 * separator), group 3 for the dotted 3-3-3 form. An underscore around it is Markdown italics.
 */
const BSN_CANDIDATE = /(?<![\p{L}\p{N}.,/+-])(?:(\d{4}([. ])\d{2}\2\d{3})|(\d{3}\.\d{3}\.\d{3})|\d{3}([ -])\d{3}\4\d{3}|\d{4}-\d{2}-\d{3}|\d{8,9})(?![\p{L}\p{N}])/gu;

const MONEY_AFTER = /^\s?(?:euro|eur\b|dollar|usd|gbp|pond|pound)/i;

/**
 * Dutch citizen service numbers passing the 11-proof. Nine digits pass it by chance one time in
 * eleven, so a compact number, or one grouped with spaces or dashes as reference numbers are, needs
 * a BSN context word; the 4-2-3 grouping printed on ID documents and the dotted 3-3-3 grouping are
 * taken as BSN unless money or a reference number is spoken of.
 */
export const bsnRecogniser: Recogniser = {
  minDigits: 8,
  find(text, _earlier, values) {
    const spans: Span[] = [];
    BSN_CANDIDATE.lastIndex = 0;
    for (let match = BSN_CANDIDATE.exec(text); match; match = BSN_CANDIDATE.exec(text)) {
      const start = match.index;
      const end = start + match[0].length;
      if (isBsn(text, match, end, values)) spans.push({ start, end });
      // Go on inside the candidate: a BSN may start there ("0000 00 000.000.061").
      BSN_CANDIDATE.lastIndex = start + 1;
    }
    return spans;
  },
};

function isBsn(text: string, match: RegExpExecArray, end: number, values: readonly Span[]): boolean {
  if (continuesAsNumber(text, end) || !passesElevenProof(digitsOf(match[0]))) return false;
  const context = contextBefore(text, match.index, BSN_CONTEXT, values);
  if (context === 'opposing') return false;
  const typicalFormat = match[1] !== undefined || (match[3] !== undefined && !MONEY_AFTER.test(text.slice(end, end + 8)));
  return context === 'supporting' || typicalFormat;
}

/** The BSN 11-proof: 9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is a multiple of 11 (and not all zeros). */
function passesElevenProof(digits: string): boolean {
  const nine = digits.length === 8 ? `0${digits}` : digits;
  if (nine.length !== 9 || /^0+$/.test(nine)) return false;
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (nine.charCodeAt(i) - 0x30) * (9 - i);
  sum -= nine.charCodeAt(8) - 0x30;
  return sum % 11 === 0;
}
