import { afterEach, describe, expect, it } from '@jest/globals';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicyBundle, PolicyLoadError } from './loader.js';

const SHIPPED = fileURLToPath(new URL('../../../policies', import.meta.url));
const SHIPPED_FILE = join(SHIPPED, 'frontline-updates.policy.yaml');
const BROKEN = fileURLToPath(new URL('../../../test/fixtures/policies/broken', import.meta.url));

describe('loadPolicyBundle', () => {
  const dirs: string[] = [];
  const folder = (files: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-policy-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  };
  const problemsOf = (dir: string) => {
    try {
      loadPolicyBundle(dir);
    } catch (error) {
      expect(error).toBeInstanceOf(PolicyLoadError);
      return (error as PolicyLoadError).problems.map((p) => `${p.file}:${p.line} ${p.message}`);
    }
    throw new Error('the bundle loaded');
  };
  const shipped = readFileSync(SHIPPED_FILE, 'utf8');
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('loads and compiles the shipped policies', () => {
    const bundle = loadPolicyBundle(SHIPPED);
    expect(bundle.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(bundle.policies.map((p) => p.name)).toEqual(['frontline-updates']);
    const policy = bundle.select('frontline-updates', 'workplace.post', 'whatsapp')!;
    expect(policy).toMatchObject({
      lawfulBasis: 'consent',
      recipientConsent: { purpose: 'frontline-updates' },
      author: { whenMissing: 'drop' },
      mentioned: { whenMissing: 'redact' },
      limits: { recipientsPerShare: 50, messageLength: 4096 },
    });
    expect(policy.fields.map((f) => [f.path, f.category, f.transform.kind])).toEqual([
      ['message', 'user.content', 'redact-pii'],
      ['from.name', 'user.name', 'none'],
      ['place', 'user.location.precise', 'drop'],
      ['from.id', 'user.unique_id', 'drop'],
    ]);
    expect(policy.freeText.recognisers).toEqual(['email', 'phone', 'iban', 'bsn', 'payment_card', 'ip_address', 'credential_url']);
    expect(policy.media).toMatchObject({ photos: { allow: true }, videos: { allow: false } });
    expect(policy.delivery.type).toBe('text');
  });

  it('selects by purpose, source and destination, and by nothing else', () => {
    const bundle = loadPolicyBundle(SHIPPED);
    expect(bundle.select('marketing', 'workplace.post', 'whatsapp')).toBeUndefined();
    expect(bundle.select('frontline-updates', 'workplace.comment', 'whatsapp')).toBeUndefined();
    expect(bundle.select('frontline-updates', 'workplace.post', 'sms')).toBeUndefined();
  });

  it("names every purpose its policies name, their consent rules' included: the ones the audit log may hold in clear", () => {
    expect([...loadPolicyBundle(SHIPPED).purposes]).toEqual(['frontline-updates']);
    const [recipients, author, mentioned] = ['whatsapp-optin', 'author-naming', 'tag-naming'];
    let rule = 0;
    const rules = shipped.replace(/consent: \{ purpose: frontline-updates \}/g, () => `consent: { purpose: ${[recipients, author, mentioned][rule++]} }`);
    expect(rule).toBe(3);
    expect([...loadPolicyBundle(folder({ 'frontline-updates.policy.yaml': rules })).purposes].sort()).toEqual(['author-naming', 'frontline-updates', 'tag-naming', 'whatsapp-optin']);
  });

  it('hashes the bundle stably and changes the hash for any changed byte or file name', () => {
    const a = loadPolicyBundle(folder({ 'frontline-updates.policy.yaml': shipped }));
    const b = loadPolicyBundle(folder({ 'frontline-updates.policy.yaml': shipped }));
    expect(a.hash).toBe(b.hash);
    expect(loadPolicyBundle(folder({ 'frontline-updates.policy.yaml': `${shipped} ` })).hash).not.toBe(a.hash);
    expect(loadPolicyBundle(folder({ 'renamed.policy.yaml': shipped })).hash).not.toBe(a.hash);
  });

  it('names the same bundle whatever the line ends of the checkout', () => {
    const lf = loadPolicyBundle(folder({ 'frontline-updates.policy.yaml': shipped }));
    const crlf = loadPolicyBundle(folder({ 'frontline-updates.policy.yaml': shipped.replace(/\n/g, '\r\n') }));
    expect(crlf.hash).toBe(lf.hash);
    expect(crlf.policies[0]!.fileHash).toBe(lf.policies[0]!.fileHash);
  });

  it('names a policy it cannot read or build, with its file, instead of failing without one', () => {
    const dir = folder({ 'frontline-updates.policy.yaml': shipped });
    mkdirSync(join(dir, 'old.policy.yaml'));
    symlinkSync(join(dir, 'gone'), join(dir, '.#frontline-updates.policy.yaml'));
    expect(problemsOf(dir)).toEqual(['.#frontline-updates.policy.yaml:0 cannot be read: a link to nothing', 'old.policy.yaml:0 cannot be read: a folder, not a file']);
    const aliases = `anchor: &r [1, 2, 3]\nmany: [${Array.from({ length: 200 }, () => '*r').join(', ')}]\n`;
    expect(problemsOf(folder({ 'bomb.policy.yaml': aliases }))).toEqual([expect.stringMatching(/^bomb\.policy\.yaml:1 YAML: Excessive alias count/)]);
  });

  it('ignores files that are not *.policy.yaml', () => {
    const dir = folder({ 'frontline-updates.policy.yaml': shipped, 'notes.md': 'hello', 'draft.yaml': 'x: [' });
    expect(loadPolicyBundle(dir).policies).toHaveLength(1);
  });

  it.each([
    ['an unknown setting', shipped.replace('lawfulBasis: consent', 'lawfulBasis: consent\nlawfullBasis: consent'), /:\d+ lawfullBasis is not a policy setting/],
    ['a lawful basis outside GDPR Art. 6(1)', shipped.replace('lawfulBasis: consent ', 'lawfulBasis: whim '), /:12 lawfulBasis must be one of consent, contract/],
    ['an unknown data category', shipped.replace('category: user.name', 'category: user.nickname'), /:36 unknown data category "user.nickname"/],
    ['a field listed twice', shipped.replace('  - path: from.name', '  - path: message'), /:35 field message is listed twice/],
    ['a placeholder naming a dropped field', shipped.replace('{from.name}:', '{from.id}:'), /:70 unreachable rule: template placeholder \{from.id\} names a dropped field/],
    ['a placeholder that is not allow-listed', shipped.replace('{from.name}:', '{permalink_url}:'), /:70 template placeholder \{permalink_url\} is not an allow-listed field/],
    ['a transform that does not exist', shipped.replace('transform: redact-pii', 'transform: scramble'), /:34 fields.0.transform must be none, drop, hash, redact-pii/],
    ['broken YAML', shipped.replace('fields:', 'fields: [\n'), /:\d+ YAML: /],
    ['a duplicate key', shipped.replace('purpose: frontline-updates\n', 'purpose: frontline-updates\npurpose: other\n'), /:\d+ YAML: Map keys must be unique/],
    ['a missing allow-list', shipped.replace(/fields:[\s\S]*?(?=# Found in the message)/, ''), /:\d+ \(policy\) is missing fields/],
  ])('refuses %s with file and line', (_label, text, expected) => {
    const problems = problemsOf(folder({ 'bad.policy.yaml': text }));
    expect(problems.join('\n')).toMatch(new RegExp(`bad\\.policy\\.yaml${expected.source}`));
  });

  it('accepts organisation-prefixed categories', () => {
    const dir = folder({ 'p.policy.yaml': shipped.replace('category: user.content', 'category: org.acme.shift_notes') });
    expect(loadPolicyBundle(dir).policies[0]!.fields[0]!.category).toBe('org.acme.shift_notes');
  });

  it('names every problem of every file at once', () => {
    const problems = problemsOf(
      folder({
        'a.policy.yaml': shipped.replace('category: user.name', 'category: nope'),
        'b.policy.yaml': shipped.replace('name: frontline-updates\n', 'name: other\n').replace('destination: whatsapp', 'destination: telegram'),
      }),
    );
    expect(problems).toEqual([expect.stringMatching(/^a\.policy\.yaml:36 unknown data category "nope"/), expect.stringMatching(/^b\.policy\.yaml:14 destination must be whatsapp/)]);
  });

  it.each(['P0D', 'P0Y', 'P29D'])('refuses an audit retention of %s: shorter than the month a subject access request may take', (retention) => {
    const problems = problemsOf(folder({ 'p.policy.yaml': shipped.replace('retention: P2Y', `retention: ${retention}`) }));
    expect(problems).toEqual([expect.stringMatching(/^p\.policy\.yaml:\d+ audit\.retention must be at least 30 days/)]);
  });

  it.each(['P30D', 'P1M', 'P2Y'])('accepts an audit retention of %s', (retention) => {
    expect(loadPolicyBundle(folder({ 'p.policy.yaml': shipped.replace('retention: P2Y', `retention: ${retention}`) })).policies[0]!.retention).toBe(retention);
  });

  it('refuses two policies for the same purpose, source and destination', () => {
    const problems = problemsOf(folder({ 'a.policy.yaml': shipped, 'b.policy.yaml': shipped.replace('name: frontline-updates\n', 'name: other\n') }));
    expect(problems.join('\n')).toMatch(/b\.policy\.yaml:1 purpose frontline-updates .* already governed by a\.policy\.yaml/);
  });

  it('refuses an empty or missing folder', () => {
    expect(problemsOf(folder({})).join()).toMatch(/no \*\.policy\.yaml files/);
    expect(() => loadPolicyBundle(join(tmpdir(), 'no-such-sluice-folder'))).toThrow(/does not exist/);
  });

  it('reads the shipped file from a copy too (no absolute paths inside)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-policy-'));
    dirs.push(dir);
    copyFileSync(SHIPPED_FILE, join(dir, 'frontline-updates.policy.yaml'));
    expect(loadPolicyBundle(dir).hash).toBe(loadPolicyBundle(SHIPPED).hash);
  });

  it('checks the semantics the schema cannot express', () => {
    const problems = problemsOf(BROKEN);
    const lineIn = (file: string) => {
      const text = readFileSync(join(BROKEN, file), 'utf8').split('\n');
      return (needle: string) => text.findIndex((l) => l.includes(needle)) + 1;
    };
    const lineOf = lineIn('semantics.policy.yaml');
    const schemaLine = lineIn('schema.policy.yaml');
    expect(problems.sort()).toEqual(
      [
        `schema.policy.yaml:${schemaLine('lawfulBasis')} lawfulBasis must be one of consent, contract, legal-obligation, vital-interests, public-task, legitimate-interests`,
        `schema.policy.yaml:${schemaLine('user.nickname')} unknown data category "user.nickname" (a fideslang key or org.<organisation>.<name>)`,
        `schema.policy.yaml:${schemaLine('scramble')} fields.0.transform must be none, drop, hash, redact-pii, {mask: {keepFirst, keepLast}}, {truncate: {length}} or {generalise: {to: day|month}}`,
        `semantics.policy.yaml:${lineOf('lawfulBasis')} lawful basis consent needs a consent rule: recipients.consent names the purpose each recipient must have consented to`,
        `semantics.policy.yaml:${lineOf('path: place.name')} field place.name is both allowed and dropped (through place)`,
        `semantics.policy.yaml:${lineOf('author:')} unreachable rule: subjects.author applies to no field (no allowed field has subject: author)`,
        `semantics.policy.yaml:${lineOf('freeText:')} unreachable rule: freeText applies to no field (no field has transform: redact-pii)`,
        `semantics.policy.yaml:${lineOf('iban: deny')} unreachable rule: iban is not among freeText.recognisers`,
        `semantics.policy.yaml:${lineOf('template:')} template placeholder {permalink_url} is not an allow-listed field`,
      ].sort(),
    );
  });
});
