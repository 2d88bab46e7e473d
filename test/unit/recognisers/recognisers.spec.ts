import { describe, expect, it } from '@jest/globals';
import { findPii, RECOGNISER_CATEGORIES, RECOGNISER_IDS, RECOGNISER_PLACEHOLDERS, replaceFindings, type RecogniserId } from '../../../src/policy/domain/recognisers/index.js';

/** What findPii finds, as [recogniser, exact substring] pairs in text order. */
function found(text: string, recognisers?: readonly RecogniserId[]): [RecogniserId, string][] {
  return findPii(text, recognisers).map((f) => [f.recogniser, text.slice(f.start, f.end)]);
}

describe('email', () => {
  it.each([
    ['Mail jan.devries@example.nl voor info.', 'jan.devries@example.nl'],
    ['CC: Finance.Team@Initech.COM', 'Finance.Team@Initech.COM'],
    ['events+q4@company.org.', 'events+q4@company.org'],
    ['helpdesk@it.globex.co.uk, graag', 'helpdesk@it.globex.co.uk'],
    ["sarah.o'connor@example.ie", "sarah.o'connor@example.ie"],
    ['k.öztürk@bedrijf.nl', 'k.öztürk@bedrijf.nl'],
    ['<jobs@company.com>', 'jobs@company.com'],
    ['see: ...jan@example.nl', 'jan@example.nl'],
    ['a typo: jan..piet@example.nl', 'jan..piet@example.nl'],
    ['info@xn--bcher-kva.example', 'info@xn--bcher-kva.example'],
  ])('finds the address in %j', (text, address) => {
    expect(found(text)).toEqual([['email', address]]);
  });

  it.each([
    ['an @mention', 'Dank je @Mohammed en @Eva!'],
    ['a host without top-level domain', 'log in als beheer@intranet'],
    ['a price with @', '4 @ € 2,50'],
    ['a handle with dots', 'volg @bedrijf.nl_officieel'],
    ['a quoted local part', "'jan'@example.nl"],
    ['a local part ending in a dot', 'jan.@example.nl'],
    ['a numeric top-level domain', 'root@10.0.0.1'],
    ['a domain followed by a hyphen', 'jan@example.nl-test'],
  ])('ignores %s', (_case, text) => {
    expect(found(text, ['email'])).toEqual([]);
  });

  it('refuses a local part longer than 64 characters', () => {
    expect(found(`${'a'.repeat(65)}@example.nl`, ['email'])).toEqual([]);
    expect(found(`${'a'.repeat(64)}@example.nl`, ['email'])).toEqual([['email', `${'a'.repeat(64)}@example.nl`]]);
  });

  it('keeps the underscores of a local part, also next to a digit and in bold', () => {
    expect(found('*tom_baker@contractor.example.net*')).toEqual([['email', 'tom_baker@contractor.example.net']]);
    expect(found('cc jan_2@example.nl')).toEqual([['email', 'jan_2@example.nl']]);
  });
});

describe('phone', () => {
  it.each([
    ['bel me op 06-12345678', '06-12345678'],
    ['mobiel 06 12 34 56 78', '06 12 34 56 78'],
    ['06 1234 5678', '06 1234 5678'],
    ['0612345678 is mijn nummer', '0612345678'],
    ['06.18.27.36.45', '06.18.27.36.45'],
    ['06/38291045', '06/38291045'],
    ['kantoor (020) 123 4567', '(020) 123 4567'],
    ['020-1234567', '020-1234567'],
    ['010 - 456 78 90', '010 - 456 78 90'],
    ['0299 45 67 89', '0299 45 67 89'],
    ['+31 6 12345678', '+31 6 12345678'],
    ['+31612345678', '+31612345678'],
    ['+31 (0)6 1234 5678', '+31 (0)6 1234 5678'],
    ['0031 6 12345678', '0031 6 12345678'],
    ['0031612345678', '0031612345678'],
    ['(+31) 6 12345678', '(+31) 6 12345678'],
    ['06 – 2938 4756', '06 – 2938 4756'],
    ['+44 20 7946 0958', '+44 20 7946 0958'],
    ['+49 30 901820', '+49 30 901820'],
    ['+1 (415) 555-2671', '+1 (415) 555-2671'],
    ['+33 1 42 68 53 00', '+33 1 42 68 53 00'],
    ['app me op 31612345678', '31612345678'],
    ['31612345678 is mijn WhatsApp', '31612345678'],
    ['whatsapp 447911123456', '447911123456'],
    ['bel 14155552671 (US)', '14155552671'],
  ])('finds %j', (text, number) => {
    expect(found(text, ['phone'])).toEqual([['phone', number]]);
  });

  it.each([
    ['an ISO date', 'op 2026-11-24 live'],
    ['a Dutch date', 'vergadering 24-11-2026 om 14:30'],
    ['a date starting with 0', 'op 06-11-2026 om 14:30'],
    ['a date with slashes', 'levering 06/12/2026 08:00'],
    ['a time range that is also a 0900 number', 'open 09.00-11.30 uur'],
    ['an order number', 'order 1234567890'],
    ['an order number shaped like a landline', 'Bestelling 0412837465 is onderweg'],
    ['a customer number shaped like a landline, even formatted', 'Klantnummer 020-1234567'],
    ['an amount', 'bedrag € 1.234.567,00'],
    ['a postcode', '1234 AB Amsterdam'],
    ['a version number', 'versie 0.6.12'],
    ['an invalid Dutch number', '06-1234567'],
    ['a number running on into letters', '0612345678abc'],
    ['a compact landline without a phone word', 'artikel 0201234567'],
    ['a UK national number without a phone word', 'code 07911 123456'],
    ['a bare international number without a phone word, not a Dutch mobile', 'code 447911123456'],
    ['a bare block of digits that is no valid number, after a phone word', 'bel 31012345678'],
    ['a bare number inside a longer block of digits', 'ref8831612345678'],
  ])('ignores %s', (_case, text) => {
    expect(found(text, ['phone'])).toEqual([]);
  });

  it('finds a number in WhatsApp italics, the underscores left around the placeholder', () => {
    expect(found('bel _06-12345678_ of _+31 20 123 4567_', ['phone'])).toEqual([
      ['phone', '06-12345678'],
      ['phone', '+31 20 123 4567'],
    ]);
  });

  it.each([
    ['a line break', '06\n12345678'],
    ['CR LF', '06\r\n12345678'],
    ['a tab', '06\t12345678'],
    ['a line separator', '06\u202812345678'],
    ['a paragraph separator', '06\u202912345678'],
    ['NEL', '06\u008512345678'],
    ['the blank braille pattern', '06\u280012345678'],
  ])('reads %s inside a number as a space', (_case, number) => {
    expect(found(`bel ${number} nu`, ['phone'])).toEqual([['phone', number]]);
  });

  it('keeps numbers on separate lines apart, and lists of times no number', () => {
    expect(found('Nummers:\n06-12345678\n020-1234567\n06 87654321', ['phone'])).toEqual([
      ['phone', '06-12345678'],
      ['phone', '020-1234567'],
      ['phone', '06 87654321'],
    ]);
    expect(found('Tijden:\n09.00\n10.30\n12.15', ['phone'])).toEqual([]);
    expect(found('Tijden: 09.00 10.30', ['phone'])).toEqual([]);
  });

  it.each([
    ['bold around the first group', '*06*-12345678', '06*-12345678'],
    ['bold around a middle group', '06-*1234*5678', '06-*1234*5678'],
    ['strike-through', '~06~ 12345678', '06~ 12345678'],
    ['monospace', '```06``` 12345678', '06``` 12345678'],
    ['italics around each group', '_06_ _12_ _34_ _56_ _78_', '06_ _12_ _34_ _56_ _78'],
  ])('finds a number with WhatsApp markers (%s) inside it', (_case, text, number) => {
    expect(found(`bel ${text}`, ['phone'])).toEqual([['phone', number]]);
  });

  it('finds a Dutch mobile number whatever word comes before it', () => {
    expect(found('Vragen over je order? 06-12345678', ['phone'])).toEqual([['phone', '06-12345678']]);
    expect(found('Factuur 06 1234 5678', ['phone'])).toEqual([['phone', '06 1234 5678']]);
    expect(found('Bestelling 0612345678', ['phone'])).toEqual([['phone', '0612345678']]);
    expect(found('order 31612345678', ['phone'])).toEqual([['phone', '31612345678']]);
    expect(found('order +44 7911 123456', ['phone'])).toEqual([['phone', '+44 7911 123456']]);
  });

  it('lets a reference word outweigh a number of a shape reference numbers share', () => {
    expect(found('Klantnummer 020-1234567', ['phone'])).toEqual([]);
    expect(found('Referentie 06-2026-0145', ['phone'])).toEqual([]);
    expect(found('Invoice 0612-3456-78 was paid', ['phone'])).toEqual([]);
    expect(found('Order 415-555-2671 shipped', ['phone'])).toEqual([]);
  });

  it('counts a reference word only at a word start', () => {
    expect(found('De border control belt terug: 020-1234567', ['phone'])).toEqual([['phone', '020-1234567']]);
    expect(found('Reorder 020-1234567', ['phone'])).toEqual([['phone', '020-1234567']]);
  });

  it('does not count a reference word inside an IBAN or e-mail address before the number', () => {
    expect(found('NL14 KVKA 0123 4567 89 of 020 123 4567', ['iban', 'phone'])).toEqual([
      ['iban', 'NL14 KVKA 0123 4567 89'],
      ['phone', '020 123 4567'],
    ]);
    expect(found('ticket@kvk.nl 020 123 4567', ['email', 'phone'])).toEqual([
      ['email', 'ticket@kvk.nl'],
      ['phone', '020 123 4567'],
    ]);
  });

  it('finds a number written digit by digit, as compact numbers: a landline only after a phone word', () => {
    expect(found('nummer: 0 6 1 2 3 4 5 6 7 8', ['phone'])).toEqual([['phone', '0 6 1 2 3 4 5 6 7 8']]);
    expect(found('bel 0 2 0 1 2 3 4 5 6 7', ['phone'])).toEqual([['phone', '0 2 0 1 2 3 4 5 6 7']]);
    expect(found('+ 3 1 6 1 2 3 4 5 6 7 8', ['phone'])).toEqual([['phone', '+ 3 1 6 1 2 3 4 5 6 7 8']]);
    // Without the +, as WhatsApp shows a number: a Dutch mobile always, another after a phone word.
    expect(found('my number is 3 1 6 1 2 3 4 5 6 7 8 ok', ['phone'])).toEqual([['phone', '3 1 6 1 2 3 4 5 6 7 8']]);
    expect(found('bel 4 4 7 9 1 1 1 2 3 4 5 6', ['phone'])).toEqual([['phone', '4 4 7 9 1 1 1 2 3 4 5 6']]);
    expect(found('scores 4 4 7 9 1 1 1 2 3 4 5 6', ['phone'])).toEqual([]);
    expect(found('1 3 1 6 1 2 3 4 5 6 7 8', ['phone'])).toEqual([]);
    expect(found('uitslag 0 3 2 1 4 5 2 3 1 0', ['phone'])).toEqual([]);
  });

  it('takes a compact landline after a phone word', () => {
    expect(found('Mijn nummer is 0201234567.', ['phone'])).toEqual([['phone', '0201234567']]);
    expect(found('tel 0201234567', ['phone'])).toEqual([['phone', '0201234567']]);
  });

  it('lets the nearest context word decide', () => {
    expect(found('Bel over order 0201234567', ['phone'])).toEqual([]);
    expect(found('Ordervragen? Bel 020-1234567', ['phone'])).toEqual([['phone', '020-1234567']]);
  });

  it('takes a national number of another country only after a phone word', () => {
    expect(found("My number's 07911 123456", ['phone'])).toEqual([['phone', '07911 123456']]);
    expect(found('Call (415) 555-2671 today', ['phone'])).toEqual([['phone', '(415) 555-2671']]);
    expect(found('Room (415) 555-2671', ['phone'])).toEqual([]);
  });

  it('leaves a following time or count out of the number', () => {
    expect(found('bel 06-12345678 14:30', ['phone'])).toEqual([['phone', '06-12345678']]);
    expect(found('bel 06 12345678 2 keer', ['phone'])).toEqual([['phone', '06 12345678']]);
  });

  it('finds two numbers joined by a slash', () => {
    expect(found('bel 020 1234567 / 06 12345678', ['phone'])).toEqual([
      ['phone', '020 1234567'],
      ['phone', '06 12345678'],
    ]);
  });

  it('finds a number whose digits a card look-alike spanning the number before it had claimed', () => {
    // "6660 06 3535 3327" passes Luhn, but loses to the longer phone number it overlaps.
    expect(found('or +31 (0)6 4186 6660 06 3535 3327 please')).toEqual([
      ['phone', '+31 (0)6 4186 6660'],
      ['phone', '06 3535 3327'],
    ]);
  });
});

describe('iban', () => {
  it.each([
    ['NL', 'NL91 ABNA 0417 1643 00'],
    ['BE', 'BE09 2890 7866 6617'],
    ['DE', 'DE89 3704 0044 0532 0130 00'],
    ['FR', 'FR80 1676 1222 023J 4WJ9 9IBA G82'],
    ['GB', 'GB82 WEST 1234 5698 7654 32'],
    ['ES', 'ES36 8975 1402 6140 1419 3141'],
    ['IT', 'IT41 B168 4934 072K R2AQ XV9U PCT'],
    ['LU', 'LU28 414P NO35 YE4S CMEJ'],
    ['AT', 'AT29 6020 7764 2656 5150'],
    ['CH', 'CH06 7654 4QQZ PT49 ZHKK E'],
    ['IE', 'IE94 QVDX 7180 0239 0424 86'],
    ['PT', 'PT25 3734 4197 9237 6092 6030 9'],
  ])('finds a valid %s IBAN printed in groups and compact', (_country, iban) => {
    expect(found(`IBAN: ${iban}, dank!`)).toEqual([['iban', iban]]);
    const compact = iban.replaceAll(' ', '');
    expect(found(`IBAN: ${compact}.`)).toEqual([['iban', compact]]);
  });

  it('finds lowercase IBANs and a space after the country code', () => {
    expect(found('rekening nl91abna0417164300')).toEqual([['iban', 'nl91abna0417164300']]);
    expect(found('IBAN NL 91 ABNA 0417 1643 00')).toEqual([['iban', 'NL 91 ABNA 0417 1643 00']]);
  });

  it.each([
    ['an invalid check', 'NL91 ABNA 0417 1643 01'],
    ['check digits 00', 'GB00 WEST 1234 5698 7654 32'],
    ['a length that does not fit the country', 'NL91 ABNA 0417 1643 0012'],
    ['an unknown country', 'XX91 ABNA 0417 1643 00'],
    ['a BIC', 'ABNANL2A'],
    ['a reference', 'NL-2026-00417'],
  ])('ignores %s', (_case, text) => {
    expect(found(text, ['iban'])).toEqual([]);
  });

  it('does not read on into the words of the sentence', () => {
    expect(found('BE 12 maart 2026 om 10 uur', ['iban'])).toEqual([]);
  });

  it('finds an IBAN in italics', () => {
    expect(found('IBAN: _NL91ABNA0417164300_')).toEqual([['iban', 'NL91ABNA0417164300']]);
  });

  it.each([
    ['a line break', 'NL91 ABNA\n0417 1643 00'],
    ['dots', 'NL91.ABNA.0417.1643.00'],
    ['double spaces', 'NL91  ABNA  0417  1643  00'],
    ['dashes', 'NL91-ABNA-0417-1643-00'],
    ['spaced dashes', 'NL91 - ABNA - 0417 - 1643 - 00'],
  ])('finds an IBAN with %s between its groups', (_case, iban) => {
    expect(found(`IBAN ${iban}, dank`)).toEqual([['iban', iban]]);
  });

  it('allows separators only between groups, and only a few', () => {
    expect(found('NL91 AB.NA 0417 1643 00', ['iban'])).toEqual([]);
    expect(found('NL91    ABNA 0417 1643 00', ['iban'])).toEqual([]);
  });
});

describe('bsn', () => {
  it.each([
    ['BSN: 123456782', '123456782'],
    ['burgerservicenummer 123.456.782', '123.456.782'],
    ['Mijn sofinummer is 123 456 782', '123 456 782'],
    ['citizen service number 111222333', '111222333'],
    ['BSN 24376851 (voorloopnul weg)', '24376851'],
    ['Mijn burgerservicenummer: 1234.56.782', '1234.56.782'],
    ['BSN: _111222333_', '111222333'],
    ['BSN 111-222-333', '111-222-333'],
    ['BSN 1234-56-782', '1234-56-782'],
    ['BSN of the border guard: 111222333', '111222333'],
  ])('finds %j with a context word', (text, bsn) => {
    expect(found(text, ['bsn'])).toEqual([['bsn', bsn]]);
  });

  it('takes the formats printed on ID documents without a context word', () => {
    expect(found('nummer 1234 56 782', ['bsn'])).toEqual([['bsn', '1234 56 782']]);
    expect(found('nummer 123.456.782', ['bsn'])).toEqual([['bsn', '123.456.782']]);
  });

  it.each([
    ['the bank code of an IBAN', 'GB14 KVKA 0000 0000 0000 00 1234 56 782', 'iban'],
    ['an e-mail address', 'order@btw.nl 123.456.782', 'email'],
  ])('does not let a reference word in %s unmask the number after it', (_case, text, value) => {
    const findings = found(text, ['iban', 'email', 'bsn']);
    expect(findings.map(([recogniser]) => recogniser)).toEqual([value, 'bsn']);
  });

  it.each([
    ['a compact number without a context word', 'Pakket 123456782 komt morgen'],
    ['a spaced 3-3-3 number without a context word', 'code 123 456 782'],
    ['a dashed 3-3-3 number without a context word', 'code 111-222-333'],
    ['a dashed number after a reference word', 'BSN-controle voor ticket 111-222-333'],
    ['a number failing the 11-proof', 'BSN 123456789'],
    ['all zeros', 'BSN 000000000'],
    ['an order number', 'Ordernummer 123456782'],
    ['an amount', 'budget € 123.456.782'],
    ['an amount with the currency after it', 'omzet 123.456.782 euro'],
    ['a decimal amount', 'BSN 123.456.782,50'],
    ['an employee number next to a BSN word', 'BSN ligt bij HR, personeelsnummer 123456782'],
    ['ten digits', 'BSN 1234567820'],
  ])('ignores %s', (_case, text) => {
    expect(found(text, ['bsn'])).toEqual([]);
  });
});

describe('payment_card', () => {
  it.each([
    ['Visa', '4111 1111 1111 1111'],
    ['Visa with dashes', '4111-1111-1111-1111'],
    ['Visa compact', '4111111111111111'],
    ['13-digit Visa', '4222222222222'],
    ['Mastercard', '5555 5555 5555 4444'],
    ['Mastercard 2-series', '2223 0031 2200 3222'],
    ['American Express', '3782 822463 10005'],
    ['Discover', '6011 1111 1111 1117'],
    ['Diners Club', '3056 930902 5904'],
    ['JCB', '3530 1113 3330 0000'],
    ['Maestro', '6759 6498 2643 8453'],
    ['Visa in italics', '_4111 1111 1111 1111_'],
    ['Visa with dots', '4111.1111.1111.1111'],
    ['Visa with slashes', '4111/1111/1111/1111'],
    ['Visa with doubled spaces', '4111  1111 1111  1111'],
    ['Visa with mixed separators', '4111 1111-1111.1111'],
    ['Visa with spaced dashes', '4111 - 1111 - 1111 - 1111'],
    ['Visa over two lines', '4111 1111\n1111 1111'],
  ])('finds a %s number', (_brand, card) => {
    expect(found(`kaart ${card}.`)).toEqual([['payment_card', card.replaceAll('_', '')]]);
  });

  it.each([
    ['a number failing Luhn', '4111 1111 1111 1112'],
    ['a Luhn-valid number without an issuer prefix', '1927 9055 9772 2154'],
    ['an Amex prefix with a Visa length', '3782 8224 6310 0052'],
    ['twelve digits', '4111 1111 1113'],
    ['a list of years', '2024/2025/2026/2027'],
    ['four separators in a row', '4111 1111    1111 1111'],
  ])('ignores %s', (_case, text) => {
    expect(found(text, ['payment_card'])).toEqual([]);
  });

  it('leaves an expiry date after the number out', () => {
    expect(found('kaart 4111 1111 1111 1111 12/27', ['payment_card'])).toEqual([['payment_card', '4111 1111 1111 1111']]);
  });
});

describe('ip_address', () => {
  it.each([
    ['host 192.168.1.45.', '192.168.1.45'],
    ['DNS 1.1.1.1', '1.1.1.1'],
    ['ssh 172.31.5.9:22', '172.31.5.9'],
    ['subnet 10.20.0.0/16', '10.20.0.0'],
    ['v6 2001:db8:85a3::8a2e:370:7334', '2001:db8:85a3::8a2e:370:7334'],
    ['v6 2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:0db8:0000:0000:0000:ff00:0042:8329'],
    ['link-local fe80::1ff:fe23:4567:890a.', 'fe80::1ff:fe23:4567:890a'],
    ['mapped ::ffff:192.0.2.128', '::ffff:192.0.2.128'],
    ['adres fe80::1: zie log', 'fe80::1'],
    ['italics _192.168.1.10_', '192.168.1.10'],
    ['italics _fe80::1ff:fe23:4567:890a_', 'fe80::1ff:fe23:4567:890a'],
    ['leading zeros 192.168.001.010', '192.168.001.010'],
    ['a leading zero 10.0.0.01', '10.0.0.01'],
  ])('finds the address in %j', (text, address) => {
    expect(found(text, ['ip_address'])).toEqual([['ip_address', address]]);
  });

  it('finds both ends of a range', () => {
    expect(found('range 10.0.0.0-10.0.0.255', ['ip_address'])).toEqual([
      ['ip_address', '10.0.0.0'],
      ['ip_address', '10.0.0.255'],
    ]);
  });

  it.each([
    ['an octet above 255', '256.12.1.30'],
    ['an octet above 255 written with leading zeros', '192.168.001.256'],
    ['three parts', 'hoofdstuk 4.2.3'],
    ['five parts', '1.2.3.4.5'],
    ['a version after a letter', 'v1.2.3.4'],
    ['a version after a version word', 'versie 3.2.1.4'],
    ['a dotted date', '12.05.2026'],
    ['a time of day to the millisecond', 'om 12.30.00.000'],
    ['a time', '12:45:30'],
    ['a MAC address', '00:1A:2B:3C:4D:5E'],
    ['a bare ::', 'zie :: hier'],
    ['the loopback ::1', 'host ::1'],
  ])('ignores %s', (_case, text) => {
    expect(found(text, ['ip_address'])).toEqual([]);
  });
});

describe('credential_url', () => {
  it.each([
    'https://user:pass@example.com/x',
    'ftp://magazijn:Welkom2026!@ftp.example.nl/uploads',
    'https://ghp_A1b2C3d4E5f6G7h8I9j0K1l2@github.com/org/app.git',
    'https://legacy.example.com/app;jsessionid=1A2B3C?page=2',
    'https://app.example.com/callback#access_token=abc123&token_type=bearer',
    'https://example.com/x?X-Amz-Algorithm=AWS4&X-Amz-Signature=9f8e7d',
    'https://example.com/x?api%5Fkey=abc',
    'rtsp://admin:Hik12345@192.168.1.64:554/stream',
    'postgres://app:S3cr3t!@db.example.com/app',
    'smb://jan:Welkom01@fileserver/share',
    'mongodb+srv://u:p@cluster0.example.net',
    'redis://:p4ss@cache:6379',
    'https://example.com/x?token[]=abc',
    'https://example.com/x?token%5B0%5D=abc',
  ])('finds %s', (url) => {
    expect(found(`zie ${url} nu`)).toEqual([['credential_url', url]]);
  });

  it.each([
    'token', 'access_token', 'accessToken', 'api_key', 'apikey', 'api-key', 'key', 'access_key', 'secret_key', 'client_secret', 'secret', 'password', 'passwd', 'pwd',
    'sig', 'signature', 'auth', 'session', 'sessionid', 'code', 'X-Amz-Signature',
  ])(
    'finds a URL with a %s parameter',
    (name) => {
      const url = `https://example.com/path?page=2&${name}=s3cr3t`;
      expect(found(url)).toEqual([['credential_url', url]]);
    },
  );

  it.each([
    ['a plain URL', 'https://intranet.example.nl/rooster?week=48'],
    ['tracking parameters', 'https://forms.example.com/a?utm_source=workplace&ref=post'],
    ['a secret word in the value only', 'https://www.bing.com/search?q=api+key+rotation'],
    ['a fragment without a value', 'https://docs.example.com/auth#password-policy'],
    ['an empty secret parameter', 'https://example.com/login?token='],
    ['a user name alone', 'https://jan@example.com/'],
    ['a www address', 'www.example.nl/vacatures'],
    ['a URL of another scheme without credentials', 'rtsp://192.168.1.64:554/stream'],
    ['a page token', 'https://api.example.com/items?page_token=abc&pageToken=def'],
    ['a key inside brackets', 'https://api.example.com/items?fields[key]=name'],
  ])('ignores %s', (_case, text) => {
    expect(found(text, ['credential_url'])).toEqual([]);
  });

  it('finds a URL in italics, after the opening underscore', () => {
    expect(found('_https://x.nl/?token=abc123_', ['credential_url'])).toEqual([['credential_url', 'https://x.nl/?token=abc123']]);
  });

  it('leaves sentence punctuation and unbalanced brackets out', () => {
    expect(found('(zie https://example.com/?token=abc).', ['credential_url'])).toEqual([['credential_url', 'https://example.com/?token=abc']]);
    expect(found('https://example.com/wiki/A_(b)?key=1', ['credential_url'])).toEqual([['credential_url', 'https://example.com/wiki/A_(b)?key=1']]);
  });
});

describe('findPii', () => {
  it('gives UTF-16 code unit offsets, also after emoji and astral characters', () => {
    const text = '😀👍🏽 𝒳 bel 06-12345678 of mail jan@example.nl';
    const findings = findPii(text);
    expect(findings.map((f) => text.slice(f.start, f.end))).toEqual(['06-12345678', 'jan@example.nl']);
    expect(findings[0]).toEqual({ recogniser: 'phone', start: text.indexOf('06-'), end: text.indexOf('06-') + 11 });
  });

  it('returns findings sorted by start and without overlaps', () => {
    const text = 'https://admin:pw@host.example.com/?token=x en NL91 ABNA 0417 1643 00 en DE89 3704 0044 0532 0130 00 en 4111 1111 1111 1111';
    const findings = findPii(text);
    expect(findings.map((f) => f.recogniser)).toEqual(['credential_url', 'iban', 'iban', 'payment_card']);
    for (let i = 1; i < findings.length; i++) expect(findings[i]!.start).toBeGreaterThanOrEqual(findings[i - 1]!.end);
  });

  it('lets the longer finding win an overlap, and runs only the enabled recognisers', () => {
    const text = 'https://jan:geheim@mail.example.nl/';
    expect(found(text)).toEqual([['credential_url', text]]);
    expect(found(text, ['email'])).toEqual([['email', 'geheim@mail.example.nl']]);
    expect(found(text, [])).toEqual([]);
  });

  it.each([
    ['three cards in a row', '4111 1111 1111 1111 4111 1111 1111 1111 5555 5555 5555 4444', [['payment_card', '4111 1111 1111 1111'], ['payment_card', '4111 1111 1111 1111'], ['payment_card', '5555 5555 5555 4444']]],
    ['a phone number after a card', '4000 0000 0300 0009 06 10 00 00 00', [['payment_card', '4000 0000 0300 0009'], ['phone', '06 10 00 00 00']]],
    ['a phone number after an IBAN', 'ES80 0000 0000 0000 0036 0100 06 10 00 00 00', [['iban', 'ES80 0000 0000 0000 0036 0100'], ['phone', '06 10 00 00 00']]],
    ['a BSN after an IBAN', 'NL54 AAAA 0000 0000 00 000.000.061', [['iban', 'NL54 AAAA 0000 0000 00'], ['bsn', '000.000.061']]],
    ['a Dutch number after an international one', '+31610000000 06 10 00 00 00', [['phone', '+31610000000'], ['phone', '06 10 00 00 00']]],
    ['a card after a phone number', '+31 (0)6 1134 8623 3423 452413 00801', [['phone', '+31 (0)6 1134 8623'], ['payment_card', '3423 452413 00801']]],
    // "nl 0615708943 thanks" passes as an IBAN by its length and mod 97, but starts in a domain.
    ['an e-mail address and a number after it', 'a@aaaaa.nl 0615708943 thanks', [['email', 'a@aaaaa.nl'], ['phone', '0615708943']]],
    // The same look-alike after a URL loses to it, and must not keep the number from being read.
    ['a URL and a number after it', 'https://x.example/?token=c/nl 0612345759 thanks', [['credential_url', 'https://x.example/?token=c/nl'], ['phone', '0612345759']]],
    // "5443 7401 4109 - 6011" passes Luhn and is longer than either card, but must not hide both.
    ['two cards that a look-alike spans', '6011 5443 7401 4109 - 6011 8580 4140 5064', [['payment_card', '6011 5443 7401 4109'], ['payment_card', '6011 8580 4140 5064']]],
  ])('separates %s', (_case, text, expected) => {
    expect(found(text)).toEqual(expected);
  });

  it('masks the part of a value that a longer look-alike overlapping it leaves out', () => {
    // "5443 7401 4109 - 6011" passes Luhn and covers more than the card before it.
    expect(found('hallo 6011 5443 7401 4109 - 6011 8580 klaar')).toEqual([['payment_card', '6011 5443 7401 4109 - 6011']]);
  });

  it.each([
    ['full-width digits', 'Bel ０６-１２３４５６７８ nu', [['phone', '０６-１２３４５６７８']]],
    ['Arabic-Indic digits', 'Call ٠٦١٢٣٤٥٦٧٨ now', [['phone', '٠٦١٢٣٤٥٦٧٨']]],
    ['mathematical digits after an astral emoji', '🎉 Bel 𝟎𝟔𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖 nu', [['phone', '𝟎𝟔𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖']]],
    ['joiners and direction marks between the digits', 'Bel 06\u200d12\u200c34\u200e56\u200f78 nu', [['phone', '06\u200d12\u200c34\u200e56\u200f78']]],
    ['keycap emoji, the last keycap whole', 'Bel 0️⃣6️⃣1️⃣2️⃣3️⃣4️⃣5️⃣6️⃣7️⃣8️⃣ nu', [['phone', '0️⃣6️⃣1️⃣2️⃣3️⃣4️⃣5️⃣6️⃣7️⃣8️⃣']]],
    ['a full-width e-mail address', 'Mail ａｎｎａ＠ｅｘａｍｐｌｅ．ｎｌ', [['email', 'ａｎｎａ＠ｅｘａｍｐｌｅ．ｎｌ']]],
    ['dingbat digits', 'Bel ⓿❻❶❷❸❹❺❻❼❽ nu', [['phone', '⓿❻❶❷❸❹❺❻❼❽']]],
    ['sans-serif dingbat digits', 'Bel 🄋➅➀➁➂➃➄➅➆➇ nu', [['phone', '🄋➅➀➁➂➃➄➅➆➇']]],
    ['negative sans-serif dingbat digits', 'Bel 🄌➏➊➋➌➍➎➏➐➑ nu', [['phone', '🄌➏➊➋➌➍➎➏➐➑']]],
    ['double circled digits', 'Bel ⓿⓺⓵⓶⓷⓸⓹⓺⓻⓼ nu', [['phone', '⓿⓺⓵⓶⓷⓸⓹⓺⓻⓼']]],
    ['circled numbers above nine', 'Bel ⓪⑥⑫㉞㊽⑦⑧ nu', [['phone', '⓪⑥⑫㉞㊽⑦⑧']]],
    ['parenthesised and full-stop digits', 'Bel ⓪⑥⑴⑵⑶⑷⒌⒍⒎⒏ nu', [['phone', '⓪⑥⑴⑵⑶⑷⒌⒍⒎⒏']]],
    ['an IBAN with invisible separators, a card with figure spaces', 'NL91\u2062ABNA\u20620417\u20621643\u206200 en 4111\u20071111\u20071111\u20071111', [['iban', 'NL91\u2062ABNA\u20620417\u20621643\u206200'], ['payment_card', '4111\u20071111\u20071111\u20071111']]],
  ])('finds a value written with %s, as the original text holds it', (_case, text, expected) => {
    expect(found(text)).toEqual(expected);
  });

  it('does not take look-alikes in other digits for values', () => {
    expect(found('Bestelling ٢٠٢٦-١١٨٤ komt om ٠٩:٣٠')).toEqual([]);
    expect(found('Order ４１５-５５５-２６７１ shipped')).toEqual([]);
  });

  it('reports a finding once when a recogniser is named twice', () => {
    expect(found('jan@example.nl', ['email', 'email'])).toEqual([['email', 'jan@example.nl']]);
  });

  it('returns nothing for empty and digit-free texts', () => {
    expect(findPii('')).toEqual([]);
    expect(findPii('Goedemorgen allemaal, de koffie is op.')).toEqual([]);
  });

  it('has a category and a placeholder for every recogniser', () => {
    for (const id of RECOGNISER_IDS) {
      expect(RECOGNISER_CATEGORIES[id]).toMatch(/^user\./);
      expect(RECOGNISER_PLACEHOLDERS[id]).toMatch(/^\[[a-z]+\]$/);
    }
  });
});

describe('replaceFindings', () => {
  const text = 'Mail jan@example.nl of piet@example.nl, bel 06-12345678.';

  it('masks with the typed placeholders and counts per recogniser', () => {
    expect(replaceFindings(text, findPii(text), 'mask')).toEqual({ text: 'Mail [email] of [email], bel [phone].', counts: { email: 2, phone: 1 } });
  });

  it('redacts with one placeholder', () => {
    expect(replaceFindings(text, findPii(text), 'redact').text).toBe('Mail [redacted] of [redacted], bel [redacted].');
  });

  it('leaves the text alone without findings', () => {
    expect(replaceFindings(text, [], 'mask')).toEqual({ text, counts: {} });
  });

  it('skips findings that overlap an earlier one or lie outside the text, in any order', () => {
    const findings = [
      { recogniser: 'phone' as const, start: 10, end: 20 },
      { recogniser: 'email' as const, start: 0, end: 4 },
      { recogniser: 'bsn' as const, start: 2, end: 6 },
      { recogniser: 'iban' as const, start: 50, end: 90 },
    ];
    expect(replaceFindings('abcdefghijklmnopqrstuvwxyz', findings, 'mask')).toEqual({ text: '[email]efghij[phone]uvwxyz', counts: { email: 1, phone: 1 } });
  });
});
