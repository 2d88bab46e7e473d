import { describe, expect, it } from '@jest/globals';
import { cutNames, readsAsName } from './mentions.js';

const PIETER = 'Pieter Jansen';

/** The text with Pieter Jansen cut, tagged where `tagged` first appears (or not tagged at all). */
function cut(text: string, tagged?: string, name = PIETER): string {
  const tags = tagged === undefined ? [] : [{ offset: text.indexOf(tagged), length: tagged.length }];
  return cutNames(text, [{ name, tags }]).text;
}

describe('cutNames', () => {
  it('cuts a tag shortened to the first name together with the surname typed after it', () => {
    expect(cut('Pieter Jansen opened the warehouse.', 'Pieter')).toBe('[person] opened the warehouse.');
    expect(cutNames('Pieter Jansen opened it.', [{ name: PIETER, tags: [{ offset: 0, length: 6 }] }]).count).toBe(1);
    // A shortened first name is no word of the name: the surname after it is found apart, and joined to it.
    expect(cut('Piet Jansen opened it.', 'Piet')).toBe('[person] opened it.');
  });

  it.each([
    ['accents as combining marks', 'Thanks Jose\u0301 Garci\u0301a!', 'José García'],
    ['a no-break space', 'Thanks Pieter\u00a0Jansen!', PIETER],
    ['a zero-width joiner inside', 'Thanks Pie\u200dter Jansen!', PIETER],
    ['a line break between the words', 'Thanks Pieter\nJansen!', PIETER],
    ['two spaces', 'Thanks Pieter  Jansen!', PIETER],
    ['full-width letters', 'Thanks Ｐｉｅｔｅｒ Ｊａｎｓｅｎ!', PIETER],
    ['WhatsApp italics', 'Thanks _Pieter Jansen_!', PIETER],
    ['another dash in a double name', 'Thanks Anne–Marie!', 'Anne-Marie de Wit'],
    ['another apostrophe', 'Thanks Sinéad O’Brien!', "Sinéad O'Brien"],
  ])('finds the name away from its tag written with %s', (_form, text, name) => {
    const result = cut(text, undefined, name);
    expect(result).toMatch(/^Thanks (_)?\[person\](_)?!$/);
  });

  it('cuts each word of the name where it stands capitalised inside a sentence, and the name with a genitive s', () => {
    expect(cut('Thanks Pieter, and Jansen too. De auto van Pieter Jansens broer.')).toBe('Thanks [person], and [person] too. De auto van [person] broer.');
  });

  it('leaves a word of the name at the start of a sentence or line, and one with an s (another word)', () => {
    const text = 'Will you join? Mark your calendars.\nMark: bring Marks and Will’s list.';
    expect(cut(text, undefined, 'Mark Will')).toBe('Will you join? Mark your calendars.\nMark: bring Marks and [person]’s list.');
  });

  it('does not cut particles, lower-case words that happen to be a name, or names inside other words', () => {
    expect(cut('Van morgen: het bos, de mark en planning. Vandaag Dijkstra.', undefined, 'Mark van Bos')).toBe('Van morgen: het bos, de mark en planning. Vandaag Dijkstra.');
    expect(cut('Ann is planning the channel with Ann', 'Ann', 'Ann')).toBe('[person] is planning the channel with [person]');
  });

  it('finds a tag whose offsets count code points, as some integrations send them', () => {
    const text = '🎉🎉 Piet opent vandaag.';
    expect(cutNames(text, [{ name: PIETER, tags: [{ offset: 3, length: 4 }] }]).text).toBe('🎉🎉 [person] opent vandaag.');
  });

  it('cuts what a tag showed wherever else it appears, in any case', () => {
    expect(cut('Piet opens today; PIET and piet too.', 'Piet')).toBe('[person] opens today; [person] and [person] too.');
  });

  it('takes a name of thousands of words without failing', () => {
    const name = Array.from({ length: 6000 }, () => 'Aaa').join(' ');
    expect(cutNames('Thanks Bbb', [{ name, tags: [] }])).toEqual({ text: 'Thanks Bbb', count: 0 });
    expect(cutNames(`Thanks ${name}!`, [{ name, tags: [] }])).toEqual({ text: 'Thanks [person]!', count: 1 });
  });

  it('leaves the text alone without anyone to cut, or when a tag points at other words and the name is nowhere', () => {
    expect(cutNames('Pieter Jansen opened it.', [])).toEqual({ text: 'Pieter Jansen opened it.', count: 0 });
    expect(cutNames('The warehouse opened today.', [{ name: PIETER, tags: [{ offset: 4, length: 9 }] }])).toEqual({ text: 'The warehouse opened today.', count: 0 });
  });
});

describe('readsAsName', () => {
  it.each([
    ['PIETER JANSEN', true],
    ['pieter', true],
    ['Piet', true],
    ['Pi', false],
    ['Pie\u200bter', true],
    ['Ｐｉｅｔｅｒ', true],
    ['warehouse', false],
    // More words than the name has: a tag over a paragraph is no name, and its text no form to search for.
    ['Pieter Jansen Pieter', false],
  ])('reads %j as Pieter Jansen: %s', (covered, expected) => {
    expect(readsAsName(covered, PIETER)).toBe(expected);
  });
});
