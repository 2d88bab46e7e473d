import { describe, expect, it } from '@jest/globals';
import { cutNames } from './mentions.js';
import { findPii } from './recognisers/index.js';

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

  it.each([
    ['@pieter.jansen', 'Thanks @[person]!'],
    ['#PieterJansen', 'Thanks #[person]!'],
    ['pieter_jansen', 'Thanks [person]!'],
    ['PIETERJANSEN87', 'Thanks [person]!'],
    ['pjansen', 'Thanks [person]!'],
    ['P.Jansen', 'Thanks [person]!'],
    ['P. Jansen', 'Thanks [person]!'],
  ])('finds the name written as a handle or with an initial: %s', (written, expected) => {
    expect(cut(`Thanks ${written}!`)).toBe(expected);
  });

  it.each([
    // A single letter for a word would take Sarah for Sara H.: @pieterj and @jansenp are left.
    ['@pieterj, @jansenp and @jansen.pieter', PIETER, 'Thanks @pieterj, @jansenp and @[person]!'],
    ['@pieter.jansen', 'Pieter Jan Jansen', 'Thanks @[person]!'],
    ['@jwdeboer and @jw.deboer', 'Jan-Willem de Boer', 'Thanks @[person] and @[person]!'],
    ['@kvdberg and @kees.vd.berg', 'Kees van den Berg', 'Thanks @[person] and @[person]!'],
    ['@amjansen and @anne.jansen', 'Anne-Marie Jansen', 'Thanks @[person] and @[person]!'],
    ['@sean.obrien', 'Seán O’Brien', 'Thanks @[person]!'],
    ['#DeVries', 'Anna de Vries', 'Thanks #[person]!'],
  ])('finds the handle %s for %s', (handle, name, expected) => {
    expect(cut(`Thanks ${handle}!`, undefined, name)).toBe(expected);
  });

  it('leaves the space beside a name whose tag offsets are one off', () => {
    const text = 'Opened by Pieter Jansen today';
    const at = text.indexOf('Pieter');
    for (const tag of [{ offset: at - 1, length: 13 }, { offset: at, length: 14 }]) {
      expect(cutNames(text, [{ name: PIETER, tags: [tag] }]).text).toBe('Opened by [person] today');
    }
  });

  it('cuts a name word written as a part of a hashtag in camel case when the text shows the person', () => {
    expect(cut('Welkom Pieter Jansen! #BedanktPieter #TeamJansen #GreatDay')).toBe('Welkom [person]! #Bedankt[person] #Team[person] #GreatDay');
    expect(cut('#BedanktPieter')).toBe('#BedanktPieter');
  });

  it('cuts a name word between ordinary words in a hashtag or handle written in one case, when the text shows the person', () => {
    expect(cut('Welkom Pieter Jansen! #bedanktpieter #TEAMJANSEN #Pieterbedankt @teampieter2026')).toBe(
      'Welkom [person]! #bedankt[person] #TEAM[person] #[person]bedankt @team[person]2026',
    );
    // Not where the text does not show the person otherwise, nor where the rest of the tag is no run of ordinary words.
    expect(cut('#bedanktpieter #teamjansen')).toBe('#bedanktpieter #teamjansen');
    expect(cut('Welkom Pieter Jansen! #kompieterx #pieterxyz #superpieterplein')).toBe('Welkom [person]! #kompieterx #pieterxyz #superpieterplein');
  });

  it('reads a hashtag of 300,000 letters, a name word 15,000 times in it, in one pass', () => {
    // Checking the words around each of 15,000 finds afresh would read the 200,000 letters before them 15,000 times: some twenty minutes.
    // (A q after each: pieter alone is pie and ter, ordinary words.)
    const tag = `#${'team'.repeat(50_000)}${'pieterq'.repeat(15_000)}`;
    expect(cut(`Welkom Pieter Jansen! ${tag} #teampieter`)).toBe(`Welkom [person]! ${tag} #team[person]`);
  });

  it('finds a handle with or without the particles of the name, but never the first word alone', () => {
    expect(cut('Volg @pietervandijk en @pieter.van.dijk en pieter_dijk.', undefined, 'Pieter van Dijk')).toBe('Volg @[person] en @[person] en [person].');
    // Le is a surname here, and a particle elsewhere: the handle must hold it.
    expect(cut('Ik ben er, @benle ook.', undefined, 'Ben Le')).toBe('Ik ben er, @[person] ook.');
  });

  it('cuts a name inside an e-mail address so that the address stays one for the e-mail recogniser, when it runs', () => {
    const text = 'Mail pieter.jansen@example.org or info@pieterjansen.nl';
    const people = [{ name: PIETER, tags: [] }];
    expect(cutNames(text, people, (t) => findPii(t, ['email'])).text).toBe('Mail person@example.org or info@person.nl');
    expect(findPii('Mail person@example.org or info@person.nl', ['email'])).toHaveLength(2);
    expect(cutNames(text, people).text).toBe('Mail [person]@example.org or info@[person].nl');
  });

  it('finds no handle inside a longer word, and one with digits joined after it', () => {
    expect(cut('See xpieterjansen and pieterjansenx, not pieter_jansen_2.')).toBe('See xpieterjansen and pieterjansenx, not [person].');
  });

  it('reads a full stop after a title or an initial of the person as no end of a sentence, and cuts the initials with the name', () => {
    expect(cut('Gesprek met Dhr. P. Jansen. Mr. Jansen belt terug. Gr. Pieter')).toBe('Gesprek met Dhr. [person]. Mr. [person] belt terug. Gr. [person]');
    expect(cut('Welkom J.W. de Boer en J. W. de Boer!', undefined, 'Jan-Willem de Boer')).toBe('Welkom [person] en [person]!');
    expect(cut('Bel K. v.d. Berg of Kees van den Berg.', undefined, 'Kees van den Berg')).toBe('Bel [person] of [person].');
  });

  it('reads a full stop after another letter or an acronym as the end of a sentence', () => {
    const text = 'Mark Groot joins. Lunch is in Hall B. Mark your calendars. Mail HR. Groot nieuws!';
    expect(cut(text, 'Mark Groot', 'Mark Groot')).toBe('[person] joins. Lunch is in Hall B. Mark your calendars. Mail HR. Groot nieuws!');
    // A particle has no initial.
    expect(cut('Kees de Groot is terug. Ook vitamine D. Groot nieuws!', 'Kees de Groot', 'Kees de Groot')).toBe('[person] is terug. Ook vitamine D. Groot nieuws!');
  });

  it('cuts a name word at the start of a sentence or in lower case when the text shows the person elsewhere and the word is no ordinary word', () => {
    expect(cut('Pieter Jansen opened it. Pieter says hi. Groeten, pieter')).toBe('[person] opened it. [person] says hi. Groeten, [person]');
    // Nothing else shows the person: a capitalised word at the start of a sentence may be anyone's.
    expect(cut('Pieter opened it.')).toBe('Pieter opened it.');
    expect(cut('Mark Groot joins. Groot nieuws! Mark your calendars, mark it.', undefined, 'Mark Groot')).toBe('[person] joins. Groot nieuws! Mark your calendars, mark it.');
  });

  it('leaves a month that is a name word where a number dates it', () => {
    expect(cut('Team Jan Smit levert vanaf Jan 2026, niet op 12 Jan. Dank Jan!', 'Jan Smit', 'Jan Smit')).toBe('Team [person] levert vanaf Jan 2026, niet op 12 Jan. Dank [person]!');
    expect(cut('May Chen starts on 3 May. Thanks May.', 'May Chen', 'May Chen')).toBe('[person] starts on 3 May. Thanks [person].');
  });

  it('leaves an ordinary word that is a name word at the start of a sentence or in lower case, and cuts the rest there', () => {
    const dayTagged = (text: string) => cut(text, 'Sarah Day', 'Sarah Day');
    expect(dayTagged('Welcome Sarah Day! Day 1 starts now, have a great day. Sarah, enjoy.')).toBe('Welcome [person]! Day 1 starts now, have a great day. [person], enjoy.');
    expect(cut('Dank Floor de Jong! Floor 2 is open. Veel geluk, floor.', 'Floor de Jong', 'Floor de Jong')).toBe('Dank [person]! Floor 2 is open. Veel geluk, floor.');
  });

  it('cuts the Dutch genitive of a name word that is no word of its own, and a capitalised possessive', () => {
    expect(cut('Bedankt Pieter Jansen! Pieters fiets staat bij Jansens jas.')).toBe('Bedankt [person]! [person] fiets staat bij [person] jas.');
    expect(cut('Thanks Andrew Ward. Ward’s team won; the ward is open. Marks and Wards.', 'Andrew Ward', 'Andrew Ward')).toBe('Thanks [person]. [person]’s team won; the ward is open. Marks and Wards.');
  });

  it('takes the author’s name words for the author wherever they stand, with no tag needed', () => {
    const author = (text: string, name = PIETER) => cutNames(text, [{ name, tags: [], author: true }]).text;
    expect(author('Nieuwe roosters hangen.\nGroeten,\nPieter')).toBe('Nieuwe roosters hangen.\nGroeten,\n[person]');
    expect(author('Bedankt voor alles!\nMark', 'Mark de Vries')).toBe('Bedankt voor alles!\nMark');
    // Without the author flag nothing else shows the person: the word may be anyone's.
    expect(cutNames('Groeten,\nPieter', [{ name: PIETER, tags: [] }]).text).toBe('Groeten,\nPieter');
  });

  it('finds no handle where an initial and a surname spell an ordinary word', () => {
    expect(cut('We won an award, Andrew! a.ward and award.', undefined, 'Andrew Ward')).toBe('We won an award, [person]! [person] and award.');
  });

  it('reads letters that do not decompose as the letters typed without them', () => {
    expect(cut('Welkom Lukasz Wojcik en Søren!', undefined, 'Łukasz Wójcik')).toBe('Welkom [person] en Søren!');
    expect(cut('Welkom Soren Aydin!', undefined, 'Søren Aydın')).toBe('Welkom [person]!');
  });

  it('takes a common name the word lists also hold in lower case for the name', () => {
    expect(cut('Welkom Thomas Mulder!\nThomas begint maandag. Mulder komt uit Zwolle. Groeten, kees', 'Thomas Mulder', 'Thomas Mulder')).toBe('Welkom [person]!\n[person] begint maandag. [person] komt uit Zwolle. Groeten, kees');
    expect(cut('Dank Kees Dekker! Kees heeft het geregeld. groeten, kees', 'Kees Dekker', 'Kees Dekker')).toBe('Dank [person]! [person] heeft het geregeld. groeten, [person]');
  });

  it('keeps a name and an e-mail address after it two cuts, so the address stays one', () => {
    const text = 'Groeten,\nAnna de Vries\nanna.devries@acme.nl';
    expect(cutNames(text, [{ name: 'Anna de Vries', tags: [] }], (t) => findPii(t, ['email'])).text).toBe('Groeten,\n[person]\nperson@acme.nl');
  });

  it('reads a full stop in an abbreviation of letters as no end of a sentence', () => {
    expect(cut('Dank Will de Boer. Aanwezig: o.a. Will en i.s.m. Boer.', 'Will de Boer', 'Will de Boer')).toBe('Dank [person]. Aanwezig: o.a. [person] en i.s.m. [person].');
  });

  it('takes only the initials of given names for the initials of the person', () => {
    expect(cut('Thanks Will Green. Lunch in Hall G. Will you join us?', 'Will Green', 'Will Green')).toBe('Thanks [person]. Lunch in Hall G. Will you join us?');
  });

  it('leaves a surname that ends in s after a capitalised first name, and one before no noun', () => {
    expect(cut('Thanks Pieter Jansen! Annelies Pieters helped; zie Pieters fiets. Hij komt van Pieters.')).toBe('Thanks [person]! Annelies Pieters helped; zie [person] fiets. Hij komt van Pieters.');
  });

  it('takes the author’s name word outside a sentence for the author only where it stands alone on its line', () => {
    const author = (text: string) => cutNames(text, [{ name: 'Daan Koning', tags: [], author: true }]).text;
    expect(author('Daan Visser neemt het over.\nZie https://acme.nl/team/daan\n\nDaan')).toBe('Daan Visser neemt het over.\nZie https://acme.nl/team/daan\n\n[person]');
  });

  it('reads ß as the ss that upper case writes for it', () => {
    expect(cut('Danke JÜRGEN GROSS!', undefined, 'Jürgen Groß')).toBe('Danke [person]!');
    expect(cut('Danke Jürgen Groß!', undefined, 'Jürgen Gross')).toBe('Danke [person]!');
  });

  it('finds a tag whose offsets count code points, as some integrations send them', () => {
    const text = '🎉🎉 Piet opent vandaag.';
    expect(cutNames(text, [{ name: PIETER, tags: [{ offset: 3, length: 4 }] }]).text).toBe('🎉🎉 [person] opent vandaag.');
  });

  it('cuts what a tag showed wherever else it appears, in any case', () => {
    expect(cut('Piet opens today; PIET and piet too.', 'Piet')).toBe('[person] opens today; [person] and [person] too.');
  });

  it('takes a name of many particles against a handle that almost matches it', () => {
    // Each particle may be left out of a handle: trying every way to skip 50 of them would never end.
    const name = `Jan ${Array.from({ length: 25 }, () => 'van de').join(' ')} Berg`;
    const text = `${'jan' + 'vande'.repeat(25)}x berg `.repeat(20);
    expect(cutNames(text, [{ name, tags: [] }]).text).toBe(text);
    expect(cutNames(`@jan${'vande'.repeat(25)}berg!`, [{ name, tags: [] }]).text).toBe('@[person]!');
  });

  it.each([["Robert ' Bob ' Smith", 'Thanks @Robert Smith, Smithson!'], ["'Abdullah Rahman", 'Thanks Rahmanx and Rahman!'], ["'t Hartman", 'Thanks Hartmanx!']])('takes a name with a word of apostrophes alone: %s', (name, text) => {
    expect(typeof cutNames(text, [{ name, tags: [] }]).text).toBe('string');
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

describe('cutNames: what a tag covers', () => {
  it.each([
    ['PIETER JANSEN', true],
    ['pieter', true],
    ['Piet', true],
    ['Pi', false],
    ['Pie\u200bter', true],
    ['Ｐｉｅｔｅｒ', true],
    ['warehouse', false],
    ['Piet Smit', false],
  ])('reads a tag over %j as Pieter Jansen: %s', (covered, expected) => {
    const tagged = cutNames(covered, [{ name: PIETER, tags: [{ offset: 0, length: covered.length }] }]).text;
    expect(tagged === '[person]').toBe(expected);
  });
});
