import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { type ConsentSnapshot, type ConsentState, consentSubjectsFor, evaluateShare, mediaAttachmentsOf, type ShareInput } from './evaluator.js';
import { compilePolicyBundle, loadPolicyBundle } from './loader.js';
import { isOrdinaryWord } from './lexicon/ordinary-words.js';

const bundle = loadPolicyBundle(fileURLToPath(new URL('../../../policies', import.meta.url)));
const policy = bundle.select('frontline-updates', 'workplace.post', 'whatsapp')!;
const AUTHOR = '100041234567890';
const TAGGED = '100049999';

function input(post: Record<string, unknown> = {}, recipients = ['31612345678']): ShareInput {
  return {
    purpose: 'frontline-updates',
    source: 'workplace.post',
    destination: 'whatsapp',
    post: {
      id: '1_2',
      message: 'Pieter Jansen opened the warehouse',
      from: { id: AUTHOR, name: 'Anna de Vries' },
      message_tags: [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }],
      place: { name: 'Utrecht' },
      permalink_url: 'https://example/1',
      ...post,
    },
    recipients: recipients.map((waId) => ({ waId })),
  };
}

function consents(states: Record<string, ConsentState>): ConsentSnapshot {
  return (subject, purpose) => (purpose === 'frontline-updates' ? (states[`${subject.type}:${subject.id}`] ?? 'none') : 'none');
}

const everyone = consents({ 'whatsapp:31612345678': 'granted', [`workplace:${AUTHOR}`]: 'granted', [`workplace:${TAGGED}`]: 'granted' });

describe('evaluateShare', () => {
  it('denies by default when no policy names the purpose', () => {
    const decision = evaluateShare(undefined, bundle.hash, input(), everyone);
    expect(decision).toMatchObject({ status: 'denied', policy: null, reasons: ['policy.none_matches'], outbound: null });
    expect(decision.recipients).toEqual([{ waId: '31612345678', decision: 'denied', reasons: ['policy.none_matches'] }]);
    // The post is still its author's: their access report and erasure find the share.
    expect(decision.subjects).toEqual([{ role: 'author', type: 'workplace', id: AUTHOR, consent: 'not_asked', categories: [] }]);
  });

  it('denies a share no recipient may receive for the recipients\' reasons, each once', () => {
    const recipients = ['31612345678', '31687654321', '31611111111'];
    const states = consents({ 'whatsapp:31612345678': 'withdrawn', [`workplace:${AUTHOR}`]: 'granted', [`workplace:${TAGGED}`]: 'granted' });
    const decision = evaluateShare(policy, bundle.hash, input({}, recipients), states);
    expect([decision.status, decision.reasons, decision.outbound]).toEqual(['denied', ['recipient.consent_withdrawn', 'recipient.no_consent'], null]);
    // Where one may receive it, the others' reasons stay theirs.
    const partly = evaluateShare(policy, bundle.hash, input({}, recipients), consents({ 'whatsapp:31687654321': 'granted' }));
    expect([partly.status, partly.reasons]).toEqual(['partially_accepted', []]);
  });

  it('lets the allow-listed fields cross and reports everything else as dropped', () => {
    const decision = evaluateShare(policy, bundle.hash, input(), everyone);
    expect(decision.status).toBe('accepted');
    expect(decision.policy).toEqual({ name: 'frontline-updates', bundle: bundle.hash });
    expect(decision.lawfulBasis).toBe('consent');
    expect(decision.outbound).toEqual({ type: 'text', body: 'Anna de Vries:\nPieter Jansen opened the warehouse' });
    expect(decision.crossing.fields).toEqual([
      { path: 'message', category: 'user.content', transform: 'redact-pii' },
      { path: 'from.name', category: 'user.name', transform: 'none', subject: 'author' },
    ]);
    expect(decision.crossing.dropped).toEqual(
      expect.arrayContaining([
        { path: 'id', reason: 'not_allow_listed' },
        { path: 'from.id', reason: 'policy.drop' },
        { path: 'place', reason: 'policy.drop' },
        { path: 'message_tags', reason: 'not_allow_listed' },
        { path: 'permalink_url', reason: 'not_allow_listed' },
      ]),
    );
    expect(decision.crossing.redactions).toEqual([]);
  });

  it.each<[string, ConsentState, string]>([
    ['no consent', 'none', 'recipient.no_consent'],
    ['a withdrawn consent', 'withdrawn', 'recipient.consent_withdrawn'],
  ])('denies a recipient with %s', (_label, state, reason) => {
    const decision = evaluateShare(policy, bundle.hash, input({}, ['31612345678', '31600000000']), consents({ 'whatsapp:31612345678': 'granted', 'whatsapp:31600000000': state }));
    expect(decision.status).toBe('partially_accepted');
    expect(decision.recipients[1]).toEqual({ waId: '31600000000', decision: 'denied', reasons: [reason] });
    const none = evaluateShare(policy, bundle.hash, input({}, ['31600000000']), consents({ 'whatsapp:31600000000': state }));
    expect(none).toMatchObject({ status: 'denied', outbound: null });
  });

  it('drops the author name without the author consent', () => {
    const decision = evaluateShare(policy, bundle.hash, input(), consents({ 'whatsapp:31612345678': 'granted', [`workplace:${TAGGED}`]: 'granted' }));
    expect((decision.outbound as { body: string }).body).toBe('Pieter Jansen opened the warehouse');
    expect(decision.crossing.dropped).toContainEqual({ path: 'from.name', reason: 'subject.no_consent' });
    expect(decision.subjects).toContainEqual({ role: 'author', type: 'workplace', id: AUTHOR, consent: 'none', categories: [], purpose: 'frontline-updates' });
  });

  it("cuts the author's name from the message when the author has not consented, as from.name is dropped", () => {
    const message = 'Nieuwe roosters hangen. Groeten, Anna de Vries (06-12345678), of bel Anna';
    const decision = evaluateShare(policy, bundle.hash, input({ message, message_tags: [] }), recipientOnly);
    expect((decision.outbound as { body: string }).body).toBe('Nieuwe roosters hangen. Groeten, [person] ([phone]), of bel [person]');
    expect(decision.crossing.redactions).toContainEqual({ path: 'message', recogniser: 'mention', count: 2 });
    const withAuthor = evaluateShare(policy, bundle.hash, input({ message, message_tags: [] }), consents({ 'whatsapp:31612345678': 'granted', [`workplace:${AUTHOR}`]: 'granted' }));
    expect((withAuthor.outbound as { body: string }).body).toBe('Anna de Vries:\nNieuwe roosters hangen. Groeten, Anna de Vries ([phone]), of bel Anna');
    // Without a rule for mentioned people too, and never more than cut: the author rule drops, it does not deny.
    const { bundle: noMentionRule, policy: authorOnly } = policyFrom(`${HEADER}subjects:
  author: { consent: { purpose: frontline-updates }, whenMissing: drop }
fields:
  - { path: message, category: user.content }
  - { path: from.name, category: user.name, subject: author }
delivery: { type: text, template: "{message}" }
`);
    const signed = evaluateShare(authorOnly, noMentionRule.hash, input({ message: 'Mark your calendars. Groeten, Anna de Vries', message_tags: [] }), recipientOnly);
    expect(signed).toMatchObject({ status: 'accepted', outbound: { type: 'text', body: 'Mark your calendars. Groeten, [person]' } });
  });

  it('cuts a tag at the offsets Workplace gave even when hidden characters before it are taken out', () => {
    for (const hidden of ['\u00ad', '\u200b', '\ufeff']) {
      const message = `Shift${hidden} swap: Piet opens today.`;
      const tags = [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: message.indexOf('Piet'), length: 4 }];
      const decision = evaluateShare(policy, bundle.hash, input({ message, message_tags: tags }), consents({ 'whatsapp:31612345678': 'granted', [`workplace:${AUTHOR}`]: 'granted' }));
      expect((decision.outbound as { body: string }).body).toBe('Anna de Vries:\nShift swap: [person] opens today.');
    }
  });

  it('replaces a tagged person without consent, at the tag and everywhere else', () => {
    const message = 'Pieter Jansen opened it. Thanks Pieter Jansen!';
    const decision = evaluateShare(policy, bundle.hash, input({ message }), consents({ 'whatsapp:31612345678': 'granted', [`workplace:${AUTHOR}`]: 'granted' }));
    expect((decision.outbound as { body: string }).body).toBe('Anna de Vries:\n[person] opened it. Thanks [person]!');
    expect(decision.crossing.redactions).toEqual([{ path: 'message', recogniser: 'mention', count: 2 }]);
  });

  it('cuts at UTF-16 offsets, so an emoji before the tag does not shift the cut', () => {
    const message = '🎉🎉 Welcome Piet! Piet is great';
    const offset = message.indexOf('Piet');
    expect(offset).toBe(13);
    const tags = [{ id: TAGGED, name: 'Piet', type: 'user', offset, length: 4 }];
    const decision = evaluateShare(policy, bundle.hash, input({ message, message_tags: tags }), consents({ 'whatsapp:31612345678': 'granted' }));
    expect((decision.outbound as { body: string }).body).toBe('🎉🎉 Welcome [person]! [person] is great');
  });

  it('cuts what a tag covers even when it reads other than the name: shortened, or in another case', () => {
    const only = consents({ 'whatsapp:31612345678': 'granted' });
    const shortened = [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: 7, length: 6 }];
    const decided = evaluateShare(policy, bundle.hash, input({ message: 'Thanks Pieter for the help', message_tags: shortened }), only);
    expect((decided.outbound as { body: string }).body).toBe('Thanks [person] for the help');
    expect(decided.crossing.redactions).toEqual([{ path: 'message', recogniser: 'mention', count: 1 }]);
    const cased = [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }];
    const lower = evaluateShare(policy, bundle.hash, input({ message: 'pieter jansen opened the warehouse', message_tags: cased }), only);
    expect((lower.outbound as { body: string }).body).toBe('[person] opened the warehouse');
    const elsewhere = evaluateShare(policy, bundle.hash, input({ message: 'Pieter Jansen opened it. Thanks PIETER JANSEN!', message_tags: cased }), only);
    expect((elsewhere.outbound as { body: string }).body).toBe('[person] opened it. Thanks [person]!');
  });

  it('cuts what a tag covers when it shows the name in another form: accents, full-width, invisible characters, apostrophes, a shortened word', () => {
    const only = consents({ 'whatsapp:31612345678': 'granted' });
    const cut = (name: string, shown: string) => {
      const message = `hi ${shown}! see you`;
      const decided = evaluateShare(policy, bundle.hash, input({ message, message_tags: [{ id: TAGGED, name, type: 'user', offset: 3, length: shown.length }] }), only);
      return (decided.outbound as { body: string }).body;
    };
    for (const [name, shown] of [
      ['José', 'Jose\u0301'],
      ['José', 'Jose'],
      ['Zoë', 'Zoe'],
      ['O’Brien', "O'Brien"],
      ['Pieter', 'Pie\u200bter'],
      ['Pieter', 'Pie\u00adter'],
      ['Pieter', '\uff30\uff49\uff45\uff54\uff45\uff52'],
      ['ilker', '\u0130LKER'],
      ['Pieter Jansen', 'Piet'],
      ['Pie\u0000ter', 'Pieter'],
    ]) {
      expect([name, cut(name!, shown!)]).toEqual([name, 'hi [person]! see you']);
    }
    // A tag over another word is not cut (a wrong offset), nor over two letters of the name.
    expect(cut('Pieter Jansen', 'Maria')).toBe('hi Maria! see you');
    expect(cut('Pieter Jansen', 'Pi')).toBe('hi Pi! see you');
  });

  it('replaces what a shortened tag showed wherever else it appears, as whole words only', () => {
    const only = consents({ 'whatsapp:31612345678': 'granted' });
    const body = (message: string, tags: unknown[]) => (evaluateShare(policy, bundle.hash, input({ message, message_tags: tags }), only).outbound as { body: string }).body;
    expect(body('Thanks Pieter for the help. Pieter, again!', [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: 7, length: 6 }])).toBe('Thanks [person] for the help. [person], again!');
    expect(body('Hi Anne, welcome. anne starts Monday', [{ id: TAGGED, name: 'Anne-Marie Jansen', type: 'user', offset: 3, length: 4 }])).toBe('Hi [person], welcome. [person] starts Monday');
    expect(body('Ed Li shared lists', [{ id: TAGGED, name: 'Ed Li', type: 'user', offset: 0, length: 5 }])).toBe('[person] shared lists');
    expect(body('Ann is planning the channel with Ann', [{ id: TAGGED, name: 'Ann', type: 'user', offset: 0, length: 3 }])).toBe('[person] is planning the channel with [person]');
    expect(body('Thanks Person for it', [{ id: TAGGED, name: 'Person', type: 'user', offset: 7, length: 6 }])).toBe('Thanks [person] for it');
  });

  it('cuts a name inside an e-mail address so that the e-mail recogniser still masks it as an address', () => {
    const only = consents({ 'whatsapp:31612345678': 'granted' });
    const message = 'Thanks Pieter Jansen! Mail pieter.jansen@example.org';
    const decision = evaluateShare(policy, bundle.hash, input({ message, message_tags: [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: 7, length: 13 }] }), only);
    expect((decision.outbound as { body: string }).body).toBe('Thanks [person]! Mail [email]');
    expect(decision.crossing.redactions).toEqual([
      { path: 'message', recogniser: 'mention', count: 2 },
      { path: 'message', recogniser: 'email', count: 1 },
    ]);
    // Where another recogniser takes the address's start, the name is gone all the same.
    const phoneFirst = evaluateShare(policy, bundle.hash, input({ message: 'Dank Pieter Jansen! Bel +31 6 12 34 56 78-pieter.jansen@ex.nl', message_tags: [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: 5, length: 13 }] }), only);
    expect((phoneFirst.outbound as { body: string }).body).toMatch(/^Dank \[person\]! Bel \[phone\]/);
    expect(JSON.stringify(phoneFirst.outbound)).not.toMatch(/pieter|jansen/i);
  });

  it('takes out the hidden characters that would let a recogniser read other text than the phone shows', () => {
    const body = (message: string) => (evaluateShare(policy, bundle.hash, input({ message, message_tags: [] }), everyone).outbound as { body: string }).body;
    expect(body('Call \u202e87654321 60\u202c now')).toBe('Anna de Vries:\nCall 87654321 60 now');
    expect(body('Call 06\u200b12345678 or 06\u00ad87654321 now')).toBe('Anna de Vries:\nCall [phone] or [phone] now');
    expect(body('a\u0000b\u0007c\td\ne')).toBe('Anna de Vries:\nabc\td\ne');
    // Joiners stay: a family emoji is one.
    expect(body('Team \u{1F468}\u200d\u{1F469}\u200d\u{1F467}')).toBe('Anna de Vries:\nTeam \u{1F468}\u200d\u{1F469}\u200d\u{1F467}');
    // Inside a number they hide nothing: the recognisers read past them, and other digits alike.
    expect(body('Call 06\u200d12\u200d34\u200d56\u200d78, ０６１２３４５６７８ or ٠٦١٢٣٤٥٦٧٨ now')).toBe('Anna de Vries:\nCall [phone], [phone] or [phone] now');
  });

  it('never lets the name through on a wrong offset', () => {
    const tags = [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: 20, length: 13 }];
    const decision = evaluateShare(policy, bundle.hash, input({ message_tags: tags }), consents({ 'whatsapp:31612345678': 'granted' }));
    expect((decision.outbound as { body: string }).body).toBe('[person] opened the warehouse');
  });

  it('denies the whole share over the recipient limit', () => {
    const many = Array.from({ length: 51 }, (_, i) => `316${String(i).padStart(8, '0')}`);
    const decision = evaluateShare(policy, bundle.hash, input({}, many), () => 'granted');
    expect(decision).toMatchObject({ status: 'denied', reasons: ['limits.too_many_recipients'], outbound: null });
  });

  it('denies a share with nothing to send, or too much', () => {
    const empty = evaluateShare(policy, bundle.hash, input({ message: undefined }), consents({ 'whatsapp:31612345678': 'granted' }));
    expect(empty).toMatchObject({ status: 'denied', reasons: ['content.empty'] });
    const long = evaluateShare(policy, bundle.hash, input({ message: 'x'.repeat(4090) }), everyone);
    expect(long).toMatchObject({ status: 'denied', reasons: ['limits.message_too_long'] });
  });

  it.each([
    ['message_tags that is not an array', { message_tags: 'Pieter' }],
    ['a tag without a name', { message_tags: [{ id: TAGGED, offset: 0, length: 3 }] }],
    ['a tag with absurd offsets', { message_tags: [{ id: TAGGED, name: 'x', offset: 1e9, length: -5.5 }] }],
  ])('fails closed on %s', (_label, post) => {
    const decision = evaluateShare(policy, bundle.hash, input(post), everyone);
    expect(decision).toMatchObject({ status: 'denied', reasons: ['internal.fail_closed'], outbound: null });
    expect(decision.recipients.every((r) => r.decision === 'denied')).toBe(true);
  });

  it('fails closed when the consent store throws', () => {
    const decision = evaluateShare(policy, bundle.hash, input(), () => {
      throw new Error('store down');
    });
    expect(decision).toMatchObject({ status: 'denied', reasons: ['internal.fail_closed'] });
  });

  it('drops a non-text value at an allow-listed path instead of printing it', () => {
    const decision = evaluateShare(policy, bundle.hash, input({ from: { id: AUTHOR, name: { first: 'Anna' } } }), everyone);
    expect(decision.crossing.dropped).toContainEqual({ path: 'from.name', reason: 'invalid_value' });
    expect((decision.outbound as { body: string }).body).not.toContain('Anna');
  });

  it('asks for exactly the consents it reads', () => {
    expect(consentSubjectsFor(policy, input({}, ['31612345678', '31600000000']))).toEqual([
      { subject: { type: 'whatsapp', id: '31612345678' }, purpose: 'frontline-updates' },
      { subject: { type: 'whatsapp', id: '31600000000' }, purpose: 'frontline-updates' },
      { subject: { type: 'workplace', id: AUTHOR }, purpose: 'frontline-updates' },
      { subject: { type: 'workplace', id: TAGGED }, purpose: 'frontline-updates' },
    ]);
  });
});

describe('evaluateShare: no field outside the allow-list ever crosses (property)', () => {
  const marker = fc.uuid().map((u) => `MARK${u.replaceAll('-', '')}`);
  // Not made of ordinary words ("Will", "Groot"): those are left at the start of a sentence or in lower case.
  const name = fc.stringMatching(/^[A-Z][a-z]{2,8} [A-Z][a-z]{2,8}$/).filter((n) => !n.toLowerCase().split(' ').some(isOrdinaryWord));
  const extra = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, marker, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.stringMatching(/^[a-z_]{1,8}$/), tie('value'), { maxKeys: 3 })),
  })).value;

  it('keeps every planted value and every non-consenting name out of the message and the decision', () => {
    fc.assert(
      fc.property(
        fc.record({
          words: fc.array(fc.stringMatching(/^[a-z]{1,8}$/), { minLength: 1, maxLength: 10 }),
          author: name,
          authorConsent: fc.constantFrom<ConsentState>('granted', 'withdrawn', 'none'),
          tagged: fc.array(fc.record({ name, consent: fc.constantFrom<ConsentState>('granted', 'withdrawn', 'none') }), { maxLength: 3 }),
          extras: fc.dictionary(fc.stringMatching(/^[a-z_]{1,10}$/).filter((k) => !['message', 'from', 'message_tags'].includes(k)), extra, { maxKeys: 5 }),
          fromExtras: fc.dictionary(fc.stringMatching(/^[a-z_]{1,10}$/).filter((k) => k !== 'name'), marker, { maxKeys: 3 }),
          emojiPrefix: fc.constantFrom('', '🎉 ', '👩‍👩‍👧 '),
          // How the names are written once more at the end, as a reader would still read them.
          writtenAgain: fc.constantFrom<(name: string) => string>(
            (n) => n,
            (n) => n.toUpperCase(),
            (n) => n.replace(' ', '\u00a0'),
            (n) => n.replace(' ', '\n'),
            (n) => [...n].map((ch) => (ch === ' ' ? ch : String.fromCharCode(ch.charCodeAt(0) + 0xfee0))).join(''),
            (n) => `${n[0]}\u200d${n.slice(1)}`,
            (n) => `_${n}_`,
            (n) => n.split(' ')[0]!,
            (n) => `@${n.toLowerCase().replace(' ', '.')}`,
            (n) => `#${n.replace(' ', '')}`,
            (n) => `${n.toLowerCase().replace(' ', '_')}42`,
            (n) => `${n[0]}.${n.split(' ')[1]}`,
            (n) => `Dhr. ${n[0]}. ${n.split(' ')[1]}`,
            (n) => `. ${n.split(' ')[0]} opened it`,
            (n) => `, ${n.split(' ')[0]!.toLowerCase()}`,
          ),
        }),
        (c) => {
          // Names that share a word would be redacted together (privacy wins); keep them apart here.
          const words = (n: string) => n.toLowerCase().split(' ');
          const names = [c.author];
          const tagged = c.tagged.filter((t) => {
            if (names.some((n) => words(n).some((w) => words(t.name).some((v) => v.includes(w) || w.includes(v))))) return false;
            names.push(t.name);
            return true;
          });
          // A word of the text that holds a name word may rightly be cut as that person's (the
          // handle "rtyaab", the lone signature word "rty"): keep the text's words apart from names.
          fc.pre(!c.words.some((w) => names.some((n) => words(n).some((v) => w.includes(v)))));
          let message = c.emojiPrefix;
          const tags = tagged.map((t, i) => {
            const offset = message.length;
            message += `${t.name} `;
            return { id: String(500 + i), name: t.name, type: 'user', offset, length: t.name.length };
          });
          message += c.words.join(' ');
          for (const t of tagged) message += ` ${c.writtenAgain(t.name)}`;
          const states: Record<string, ConsentState> = { 'whatsapp:31612345678': 'granted', [`workplace:${AUTHOR}`]: c.authorConsent };
          tagged.forEach((t, i) => (states[`workplace:${500 + i}`] = t.consent));
          const post = { ...c.extras, message, message_tags: tags, from: { ...c.fromExtras, id: AUTHOR, name: c.author } };
          const decision = evaluateShare(policy, bundle.hash, { ...input(), post }, consents(states));

          const { subjects, ...shown } = decision;
          const visible = JSON.stringify(shown);
          const body = (decision.outbound as { body?: string } | null)?.body ?? '';
          for (const value of JSON.stringify([c.extras, c.fromExtras]).match(/MARK[0-9a-f]{32}/g) ?? []) {
            expect(visible).not.toContain(value);
          }
          expect(visible).not.toContain(AUTHOR);
          if (c.authorConsent !== 'granted') expect(visible).not.toContain(c.author);
          const asRead = (text: string) => text.normalize('NFKC').replace(/[\u200d_]/g, '').replace(/\s+/g, ' ').toLowerCase();
          for (const t of tagged) {
            if (t.consent !== 'granted') {
              expect(visible).not.toContain(t.name);
              for (const word of words(t.name)) expect(asRead(body)).not.toMatch(new RegExp(`\\b${word}\\b`));
              expect(asRead(body).replace(/[\s.]/g, '')).not.toContain(words(t.name).join(''));
            } else expect(body).toContain(t.name);
          }
          expect(body).toContain(c.words.join(' '));
          expect(subjects.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** A one-file bundle from YAML written in the test. */
function policyFrom(yaml: string) {
  const bundle = compilePolicyBundle([{ name: 'test.policy.yaml', bytes: Buffer.from(yaml) }]);
  return { bundle, policy: bundle.policies[0]! };
}

const HEADER = `apiVersion: sluice.policy/v1
name: test
purpose: frontline-updates
lawfulBasis: consent
source: workplace.post
destination: whatsapp
recipients:
  consent: { purpose: frontline-updates }
`;
const recipientOnly = consents({ 'whatsapp:31612345678': 'granted' });

describe('evaluateShare: free text', () => {
  const withFreeText = (freeText: string) =>
    policyFrom(`${HEADER}fields:
  - { path: message, category: user.content, transform: redact-pii }
freeText:
${freeText}
delivery: { type: text, template: "{message}" }
`);

  it('masks what the recognisers find with typed placeholders and counts it, never showing the value', () => {
    const { bundle, policy } = withFreeText('  recognisers: [email, phone, iban]\n  action: mask');
    const message = 'Mail jan.jansen@example.com or call +31 6 87654321; IBAN NL91ABNA0417164300.';
    const decision = evaluateShare(policy, bundle.hash, input({ message, message_tags: [] }), recipientOnly);
    expect((decision.outbound as { body: string }).body).toBe('Mail [email] or call [phone]; IBAN [iban].');
    expect(decision.crossing.redactions).toEqual([
      { path: 'message', recogniser: 'email', count: 1 },
      { path: 'message', recogniser: 'phone', count: 1 },
      { path: 'message', recogniser: 'iban', count: 1 },
    ]);
    expect(JSON.stringify(decision)).not.toMatch(/jansen@|87654321|NL91/);
  });

  it('redacts without saying what it was', () => {
    const { bundle, policy } = withFreeText('  recognisers: [email]\n  action: redact');
    const decision = evaluateShare(policy, bundle.hash, input({ message: 'write to a@example.org', message_tags: [] }), recipientOnly);
    expect((decision.outbound as { body: string }).body).toBe('write to [redacted]');
  });

  it('denies the share when a recogniser with action deny finds something, and only then', () => {
    const { bundle, policy } = withFreeText('  recognisers: [email, bsn]\n  action: mask\n  actions:\n    bsn: deny');
    const denied = evaluateShare(policy, bundle.hash, input({ message: 'mijn BSN is 111222333', message_tags: [] }), recipientOnly);
    expect(denied).toMatchObject({ status: 'denied', reasons: ['freetext.denied'], outbound: null });
    expect(denied.crossing.redactions).toEqual([{ path: 'message', recogniser: 'bsn', count: 1 }]);
    const masked = evaluateShare(policy, bundle.hash, input({ message: 'mail a@example.org', message_tags: [] }), recipientOnly);
    expect(masked).toMatchObject({ status: 'accepted', outbound: { body: 'mail [email]' } });
  });

  it('runs only the recognisers the policy names', () => {
    const { bundle, policy } = withFreeText('  recognisers: [email]\n  action: mask');
    const decision = evaluateShare(policy, bundle.hash, input({ message: 'a@example.org 06-12345678', message_tags: [] }), recipientOnly);
    expect((decision.outbound as { body: string }).body).toBe('[email] 06-12345678');
  });

  it('replaces tagged names first, at their offsets, then runs the recognisers', () => {
    const { bundle, policy } = policyFrom(`${HEADER}subjects:
  mentioned: { consent: { purpose: frontline-updates }, whenMissing: redact }
fields:
  - { path: message, category: user.content, transform: redact-pii }
freeText: { recognisers: [phone], action: mask }
delivery: { type: text, template: "{message}" }
`);
    const message = '👩‍👩‍👧 Pieter Jansen: 06-12345678';
    const tags = [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: message.indexOf('Pieter'), length: 13 }];
    const decision = evaluateShare(policy, bundle.hash, input({ message, message_tags: tags }), recipientOnly);
    expect((decision.outbound as { body: string }).body).toBe('👩‍👩‍👧 [person]: [phone]');
  });
});

describe('evaluateShare: transforms', () => {
  const policy = policyFrom(`${HEADER}fields:
  - { path: message, category: user.content, transform: { truncate: { length: 10 } } }
  - { path: from.id, category: user.unique_id.pseudonymous, transform: hash }
  - { path: created_time, category: system.operations, transform: { generalise: { to: month } } }
  - { path: phone, category: user.contact.phone_number, transform: { mask: { keepLast: 2 } } }
delivery:
  type: text
  template: |-
    {message}
    {from.id} {created_time} {phone}
`);
  const post = { message: 'A long message about the shift', from: { id: AUTHOR }, created_time: '2026-11-20T23:30:00-0200', phone: '0612345678', message_tags: [] };

  it('applies each field transform and names it in the crossing', () => {
    const decision = evaluateShare(policy.policy, policy.bundle.hash, input(post), { consents: recipientOnly, keyedHash: (v) => `h(${v.length})` });
    expect((decision.outbound as { body: string }).body).toBe('A long mes…\nh(15) 2026-11 ********78');
    expect(decision.crossing.fields.map((f) => f.transform)).toEqual(['truncate(10)', 'hash', 'generalise(month)', 'mask(first=0,last=2)']);
  });

  it('drops a value the transform cannot read instead of sending it', () => {
    const decision = evaluateShare(policy.policy, policy.bundle.hash, input({ ...post, created_time: 'yesterday' }), { consents: recipientOnly, keyedHash: (v) => `h(${v.length})` });
    expect(decision.crossing.dropped).toContainEqual({ path: 'created_time', reason: 'invalid_value' });
    expect((decision.outbound as { body: string }).body).toBe('A long mes…');
    // The line left out took from.id and phone with it: the crossing may not claim they crossed.
    expect(decision.crossing.fields.map((f) => f.path)).toEqual(['message']);
    expect(decision.crossing.dropped).toEqual(
      expect.arrayContaining([
        { path: 'from.id', reason: 'not_in_message' },
        { path: 'phone', reason: 'not_in_message' },
      ]),
    );
  });

  it('fails closed when the hash transform has no key', () => {
    const decision = evaluateShare(policy.policy, policy.bundle.hash, input(post), recipientOnly);
    expect(decision).toMatchObject({ status: 'denied', reasons: ['internal.fail_closed'] });
  });
});

describe('evaluateShare: delivery and lawful bases', () => {
  it('fills a WhatsApp template, with fallbacks for what did not cross and no newlines in parameters', () => {
    const { bundle, policy } = policyFrom(`${HEADER}subjects:
  author: { consent: { purpose: frontline-updates }, whenMissing: drop }
fields:
  - { path: message, category: user.content }
  - { path: from.name, category: user.name, subject: author }
delivery:
  type: template
  name: frontline_update
  language: nl
  parameters:
    - { text: "{from.name}", fallback: "Een collega" }
    - { text: "{message}", fallback: "-" }
`);
    const decision = evaluateShare(policy, bundle.hash, input({ message: 'line one\nline two', message_tags: [] }), recipientOnly);
    expect(decision.outbound).toEqual({ type: 'template', name: 'frontline_update', language: 'nl', parameters: ['Een collega', 'line one line two'] });
    // Windows line breaks too; and a blank value takes the fallback: WhatsApp refuses an empty parameter.
    const crlf = evaluateShare(policy, bundle.hash, input({ message: 'line one\r\nline two\rthree', message_tags: [] }), recipientOnly);
    expect(crlf.outbound).toMatchObject({ parameters: ['Een collega', 'line one line two three'] });
    const blank = evaluateShare(policy, bundle.hash, input({ message: ' \r\n ', message_tags: [] }), recipientOnly);
    expect(blank.outbound).toMatchObject({ parameters: ['Een collega', '-'] });
    expect(blank.crossing.fields).toEqual([]);
    expect(blank.crossing.dropped).toContainEqual({ path: 'message', reason: 'not_in_message' });
  });

  it('reports fields on a line left out as dropped, with their redactions and the names of mentioned people', () => {
    const { bundle, policy } = policyFrom(`${HEADER}subjects:
  author: { consent: { purpose: frontline-updates }, whenMissing: drop }
  mentioned: { consent: { purpose: frontline-updates }, whenMissing: redact }
fields:
  - { path: message, category: user.content, transform: redact-pii }
  - { path: from.name, category: user.name, subject: author }
  - { path: story, category: user.content, transform: redact-pii }
freeText: { recognisers: [phone], action: mask }
delivery:
  type: text
  template: |-
    {from.name}: {message}
    {story}
`);
    const decision = evaluateShare(
      policy,
      bundle.hash,
      input({ story: 'call 06-12345678', message: 'Pieter Jansen: 06-87654321' }),
      consents({ 'whatsapp:31612345678': 'granted', [`workplace:${TAGGED}`]: 'granted' }),
    );
    expect(decision.outbound).toEqual({ type: 'text', body: 'call [phone]' });
    expect(decision.crossing.fields).toEqual([{ path: 'story', category: 'user.content', transform: 'redact-pii' }]);
    expect(decision.crossing.dropped).toEqual(
      expect.arrayContaining([
        { path: 'from.name', reason: 'subject.no_consent' },
        { path: 'message', reason: 'not_in_message' },
      ]),
    );
    expect(decision.crossing.redactions).toEqual([{ path: 'story', recogniser: 'phone', count: 1 }]);
    expect(decision.subjects).toContainEqual({ role: 'mentioned', type: 'workplace', id: TAGGED, consent: 'granted', categories: [], purpose: 'frontline-updates' });
  });

  /** A text policy sending `{message}`, with an outside-window template of one parameter. */
  const withOutsideWindow = (fields: string, parameter: string) =>
    policyFrom(`${HEADER}fields:
${fields}
delivery:
  type: text
  template: "{message}"
  outsideWindow:
    name: frontline_update
    language: nl
    parameters:
      - { text: "${parameter}", fallback: "-" }
`);

  it('counts a field placed only by the outside-window template as crossing', () => {
    const { bundle, policy } = withOutsideWindow('  - { path: message, category: user.content }\n  - { path: from.name, category: user.name }', '{from.name}');
    const decision = evaluateShare(policy, bundle.hash, input({ message_tags: [] }), recipientOnly);
    expect(decision.outsideWindow).toMatchObject({ parameters: ['Anna de Vries'] });
    expect(decision.crossing.fields.map((f) => f.path)).toEqual(['message', 'from.name']);
  });

  it('reports an allowed field that no template places as dropped, not as crossed', () => {
    const { bundle, policy } = policyFrom(`${HEADER}fields:
  - { path: message, category: user.content }
  - { path: from.name, category: user.name }
delivery: { type: text, template: "{message}" }
`);
    const decision = evaluateShare(policy, bundle.hash, input({ message_tags: [] }), recipientOnly);
    expect(decision.outbound).toEqual({ type: 'text', body: 'Pieter Jansen opened the warehouse' });
    expect(decision.crossing.fields.map((f) => f.path)).toEqual(['message']);
    expect(decision.crossing.dropped).toContainEqual({ path: 'from.name', reason: 'not_in_message' });
  });

  it('prepares the template a text policy names for recipients outside the 24-hour window', () => {
    const { bundle, policy } = withOutsideWindow('  - { path: message, category: user.content }', '{message}');
    const decision = evaluateShare(policy, bundle.hash, input({ message: 'line one\nline two', message_tags: [] }), recipientOnly);
    expect(decision.outbound).toEqual({ type: 'text', body: 'line one\nline two' });
    expect(decision.outsideWindow).toEqual({ type: 'template', name: 'frontline_update', language: 'nl', parameters: ['line one line two'] });
    const denied = evaluateShare(policy, bundle.hash, input({ message: 'x', message_tags: [] }), () => 'none');
    expect(denied.outsideWindow).toBeNull();
  });

  it('leaves no name in a template parameter where line breaks became spaces', () => {
    const { bundle, policy } = withOutsideWindow('  - { path: message, category: user.content }\nsubjects:\n  mentioned: { consent: { purpose: frontline-updates }, whenMissing: redact }', '{message}');
    const message = 'Pieter Jansen opent. Bel Pieter\nJansen maandag';
    const tags = [{ id: TAGGED, name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }];
    const decision = evaluateShare(policy, bundle.hash, input({ message, message_tags: tags }), recipientOnly);
    expect(decision.outbound).toEqual({ type: 'text', body: '[person] opent. Bel [person] maandag' });
    expect(decision.outsideWindow).toMatchObject({ parameters: ['[person] opent. Bel [person] maandag'] });
  });

  it('lets recipients through without a consent rule when the basis is not consent', () => {
    const { bundle, policy } = policyFrom(`${HEADER.replace('lawfulBasis: consent', 'lawfulBasis: legitimate-interests').replace('recipients:\n  consent: { purpose: frontline-updates }', 'recipients: {}')}fields:
  - { path: message, category: user.content }
delivery: { type: text, template: "{message}" }
`);
    expect(policy.recipientConsent).toBeUndefined();
    const decision = evaluateShare(policy, bundle.hash, input({ message_tags: [] }), () => 'none');
    expect(decision.status).toBe('accepted');
    expect(consentSubjectsFor(policy, input({ message_tags: [] }))).toEqual([]);
  });
});

describe('evaluateShare: media', () => {
  const photoPost = (n = 1) => ({
    message_tags: [],
    attachments: { data: Array.from({ length: n }, () => ({ type: 'photo', media: { image: { src: 'data:image/jpeg;base64,AAAA' } } })) },
  });
  const ok = (path: string) => ({ path, ok: true as const, kind: 'photo' as const, type: 'jpeg', mimeType: 'image/jpeg', sha256: 'ab'.repeat(32), bytes: 1000, removed: ['exif', 'gps'] });

  it('sends an allowed photo as an image with the message as caption, and names the crossing', () => {
    const path = 'attachments.data.0.media.image.src';
    const decision = evaluateShare(policy, bundle.hash, { ...input(photoPost()), media: [ok(path)] }, everyone);
    expect(decision.outbound).toEqual({ type: 'image', caption: 'Anna de Vries:\nPieter Jansen opened the warehouse', media: { sha256: 'ab'.repeat(32), mimeType: 'image/jpeg', path } });
    expect(decision.crossing.fields).toContainEqual({ path, category: 'user.content', transform: 'reencode-without-metadata' });
    expect(decision.crossing.dropped).not.toContainEqual(expect.objectContaining({ path: 'attachments' }));
  });

  it.each(['media.unreadable', 'media.too_large', 'media.type_not_allowed'] as const)('denies the share with %s', (reason) => {
    const path = 'attachments.data.0.media.image.src';
    const decision = evaluateShare(policy, bundle.hash, { ...input(photoPost()), media: [{ path, ok: false, reason }] }, everyone);
    expect(decision).toMatchObject({ status: 'denied', reasons: [reason], outbound: null });
  });

  it('denies more than one photo per share', () => {
    const media = [ok('attachments.data.0.media.image.src'), ok('attachments.data.1.media.image.src')];
    expect(evaluateShare(policy, bundle.hash, { ...input(photoPost(2)), media }, everyone)).toMatchObject({ status: 'denied', reasons: ['limits.too_many_media'] });
  });

  it('takes photos from photo attachments only, and a video as a video even without its source, never its preview image', () => {
    const image = { image: { src: 'data:image/png;base64,AAAA' } };
    const post = {
      attachments: {
        data: [
          { type: 'video_share_youtube', media: image },
          { type: 'animated_image_share', media: image },
          { type: 'share', media: image },
          { type: 'sticker', media: image },
          { type: 'video_inline', media: image },
          { type: 'video_autoplay', media: { ...image, source: 'https://video.example/v.mp4' } },
          { type: 'album', media: image, subattachments: { data: [{ type: 'photo', media: image }] } },
        ],
      },
    };
    expect(mediaAttachmentsOf(post)).toEqual([
      { path: 'attachments.data.4', declared: 'video', src: undefined },
      { path: 'attachments.data.5.media.source', declared: 'video', src: 'https://video.example/v.mp4' },
      { path: 'attachments.data.6.media.image.src', declared: 'photo', src: 'data:image/png;base64,AAAA' },
      { path: 'attachments.data.6.subattachments.data.0.media.image.src', declared: 'photo', src: 'data:image/png;base64,AAAA' },
    ]);
  });

  it('fails closed when an attachment was not processed', () => {
    expect(evaluateShare(policy, bundle.hash, input(photoPost()), everyone)).toMatchObject({ status: 'denied', reasons: ['internal.fail_closed'] });
  });
});
