import { describe, expect, it } from '@jest/globals';
import { recognitionView } from '../../../src/policy/domain/recognisers/recognition-view.js';

/** The view's text, and for each of its characters the original text it was read from. */
function read(text: string): { text: string; from: string[] } | undefined {
  const view = recognitionView(text);
  if (!view) return undefined;
  const { offsets } = view;
  // Without offsets each character is read from the one at its own offset.
  return { text: view.text, from: [...view.text].map((_, i) => (offsets ? text.slice(offsets.starts[i], offsets.ends[i]) : text[i]!)) };
}

describe('recognitionView', () => {
  it.each([
    ['ASCII', 'Call 06-12345678 or mail anna@example.nl'],
    ['accented letters and emoji, nothing to fold', 'Café Zoë 🎉 opent om 09:30, tot ’s avonds'],
    ['formatting markers away from digits', '*Let op*: mail _tom_baker@example.nl_ ~vandaag~ `code`'],
  ])('leaves %s to be read as it is', (_name, text) => {
    expect(recognitionView(text)).toBeUndefined();
  });

  it.each([
    ['full-width digits and signs', '０６－１２３４５６７８', '06-12345678'],
    ['Arabic-Indic digits', '٠٦١٢٣٤٥٦٧٨', '0612345678'],
    ['extended Arabic-Indic (Persian) digits', '۰۶۱۲۳۴۵۶۷۸', '0612345678'],
    ['Devanagari digits', '०६१२३४५६७८', '0612345678'],
    ['mathematical bold and monospace digits (one run of fifty)', '𝟎𝟔𝟏𝟐 𝟶𝟼𝟷𝟸', '0612 0612'],
    ['full-width letters and the at sign', 'ａｎｎａ＠ｅｘａｍｐｌｅ．ｎｌ', 'anna@example.nl'],
    ['spaces of every width', '06\u00a012\u200734\u202f56\u300078', '06 12 34 56 78'],
    ['dashes and the minus sign', '06\u201112\u201334\u221256\u201478', '06-12-34-56-78'],
    ['invisible characters between digits', '0\u200d6\u200c1\u200e2\u200f3\u061c4\u2062567\u034f8\u180e', '06123' + '45678'],
    ['fillers, variation selectors and tags', '06\u31641\ufe0f2\u{e0020}345678', '0612345678'],
    ['combining marks on digits', '0\u03016\u0308', '06'],
    ['tabs and line breaks, CR LF as one', '06\t12\n34\r\n56\r78\v9\f0', '06 12 34 56 78 9 0'],
    ['the line and paragraph separators, NEL and the blank braille pattern', '06\u202812\u202934\u008556\u280078', '06 12 34 56 78'],
    ['formatting markers next to digits', '*06*-_1234_~5678~ ```9```', '06-12345678 9'],
    ['dingbat and negative circled digits', '⓿❶➁➌⓸🄋🄌', '0123400'],
    ['circled, parenthesised and full-stop numbers', '⑫⑴⒈㊿⒇', '12115020'],
  ])('reads %s as ASCII', (_name, text, expected) => {
    expect(read(text)?.text).toBe(expected);
  });

  it('maps every character it reads back to the code point it came from, surrogate pairs whole', () => {
    expect(read('a𝟏ｂ')).toEqual({ text: 'a1b', from: ['a', '𝟏', 'ｂ'] });
  });

  it('gives an invisible character or mark to the character before it, so a keycap digit is covered whole', () => {
    expect(read('1\ufe0f\u20e32\ufe0f\u20e3')).toEqual({ text: '12', from: ['1\ufe0f\u20e3', '2\ufe0f\u20e3'] });
    // Nothing before it to belong to: it is read as nothing and covered by no character.
    expect(read('\u200d7')).toEqual({ text: '7', from: ['7'] });
  });

  it('reads tabs and line breaks in ASCII one for one, without offsets, unless a CR LF makes the view shorter', () => {
    expect(recognitionView('bel\t06\n12345678')).toEqual({ text: 'bel 06 12345678' });
    expect(recognitionView('06\r\n12345678')?.offsets).toBeDefined();
  });

  it('maps the digits of a number folded to more units than it has back to it', () => {
    expect(read('a⑫b')).toEqual({ text: 'a12b', from: ['a', '⑫', '⑫', 'b'] });
    expect(read(`${'⑫'.repeat(3)}7`)).toEqual({ text: '1212127', from: [...'⑫⑫⑫⑫⑫⑫', '7'] });
  });

  it('leaves dropped markers and the CR of a line break outside the character before them', () => {
    expect(read('6*\r\n')).toEqual({ text: '6 ', from: ['6', '\n'] });
  });

  it('drops a run of markers against a digit whole, and keeps a marker between letters', () => {
    expect(read('a_b **7** c_d')?.text).toBe('a_b 7 c_d');
  });

  it('keeps what has no single ASCII reading as it is', () => {
    expect(read('١½™…é')?.text).toBe('1½™…é');
  });
});
