import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.js';
import { REPO_ROOT, SHIPPED_POLICIES } from '../support/test-app.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'policies');

/** Runs the real binary, as `npx sluice` does, from the compiled output. */
function sluice(args: string[], cwd = REPO_ROOT): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'sluice.js'), ...args], { cwd, encoding: 'utf8', env: { ...process.env, POLICIES_DIR: '' } });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  tempDirs.push(dir);
  return dir;
}

describe('npx sluice policy', () => {
  beforeAll(() => {
    ensureBuilt();
  }, 120_000);
  afterAll(() => {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });

  describe('lint', () => {
    it('passes the shipped policies', () => {
      const result = sluice(['policy', 'lint', '--dir', SHIPPED_POLICIES]);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/^1 policy file\(s\) OK, bundle sha256:[0-9a-f]{64}\n$/);
    });

    it('names every problem with file:line:column and exits 1', () => {
      const dir = join(FIXTURES, 'broken');
      const result = sluice(['policy', 'lint', '--dir', dir]);
      expect(result.status).toBe(1);
      const lines = result.stderr.trim().split('\n');
      expect(lines).toEqual(
        expect.arrayContaining([
          `${join(dir, 'schema.policy.yaml')}:6:1: lawfulBasis must be one of consent, contract, legal-obligation, vital-interests, public-task, legitimate-interests`,
          `${join(dir, 'schema.policy.yaml')}:13:5: unknown data category "user.nickname" (a fideslang key or org.<organisation>.<name>)`,
          `${join(dir, 'semantics.policy.yaml')}:6:1: lawful basis consent needs a consent rule: recipients.consent names the purpose each recipient must have consented to`,
          `${join(dir, 'semantics.policy.yaml')}:21:5: field place.name is both allowed and dropped (through place)`,
          `${join(dir, 'semantics.policy.yaml')}:11:3: unreachable rule: subjects.author applies to no field (no allowed field has subject: author)`,
          '9 problem(s)',
        ]),
      );
    });

    it('asks for the folder when given a policy file', () => {
      const file = join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml');
      const result = sluice(['policy', 'lint', '--dir', file]);
      expect([result.status, result.stderr]).toEqual([1, `${file}: a file, not the policies folder: name the folder that holds it\n1 problem(s)\n`]);
    });

    it('reads POLICIES_DIR when --dir is not given', () => {
      const result = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'sluice.js'), 'policy', 'lint'], { encoding: 'utf8', env: { ...process.env, POLICIES_DIR: join(FIXTURES, 'broken') } });
      expect(result.status).toBe(1);
    });
  });

  describe('test', () => {
    it('runs the shipped policy tests', () => {
      const result = sluice(['policy', 'test', '--dir', SHIPPED_POLICIES]);
      expect(result.stdout).toMatch(/\n11 passed, 0 failed\n$/);
      expect(result.status).toBe(0);
    });

    it('fails with a readable -expected/+actual diff', () => {
      const dir = tempDir();
      cpSync(SHIPPED_POLICIES, dir, { recursive: true });
      const cases = join(dir, 'tests', 'frontline-updates.yaml');
      writeFileSync(cases, readFileSync(cases, 'utf8').replace('Vragen? Bel [phone] of mail [email].', 'Vragen? Bel 06-12345678 of mail [email].'));
      const result = sluice(['policy', 'test', '--dir', dir]);
      expect(result.status).toBe(1);
      expect(result.stdout).toContain('FAIL frontline-updates.yaml:52: contact and bank details in the message are masked');
      expect(result.stdout).toContain('      message:\n          Anna de Vries:\n        - Vragen? Bel 06-12345678 of mail [email]. Declaraties naar [iban].\n        + Vragen? Bel [phone] of mail [email]. Declaraties naar [iban].');
      expect(result.stdout).toMatch(/\n10 passed, 1 failed\n$/);
    });

    it('refuses a malformed test file', () => {
      const dir = tempDir();
      cpSync(SHIPPED_POLICIES, dir, { recursive: true });
      writeFileSync(join(dir, 'tests', 'bad.yaml'), 'cases:\n  - name: no post\n    purpose: x\n');
      const result = sluice(['policy', 'test', '--dir', dir]);
      expect(result.status).toBe(1);
      expect(result.stdout).toContain('FAIL bad.yaml:2: (file)\n      2:5: cases.0 is missing post\n      2:5: cases.0 is missing recipients\n      2:5: cases.0 is missing expect\n');
    });

    it('names the line of a schema problem deep in a case', () => {
      const dir = tempDir();
      cpSync(SHIPPED_POLICIES, dir, { recursive: true });
      const cases = join(dir, 'tests', 'frontline-updates.yaml');
      writeFileSync(
        cases,
        readFileSync(cases, 'utf8')
          .replace('      status: accepted\n      message: "Anna de Vries:\\nVragen?', '      status: acepted\n      message: "Anna de Vries:\\nVragen?')
          .replace('      redactions: { email: 1, phone: 1, iban: 1 }', '      redaction: { email: 1, phone: 1, iban: 1 }'),
      );
      const result = sluice(['policy', 'test', '--dir', dir]);
      expect(result.status).toBe(1);
      expect(result.stdout).toMatch(
        /^FAIL frontline-updates\.yaml:63: \(file\)\n {6}63:7: cases\.2\.expect\.status must be one of accepted, partially_accepted, denied\n {6}65:7: cases\.2\.expect\.redaction is not a setting of a test file\n/m,
      );
      // Its cases are not known, so whether a policy has none is not judged: one mistake, one failure.
      expect(result.stdout).toMatch(/\n0 passed, 1 failed\n$/);
    });

    it('fails a case whose purpose selects no policy, even when it expects a denial', () => {
      const dir = tempDir();
      cpSync(SHIPPED_POLICIES, dir, { recursive: true });
      writeFileSync(
        join(dir, 'tests', 'typo.yaml'),
        [
          'cases:',
          '  - name: a recipient without consent is denied',
          '    purpose: frontline-update',
          '    post: { id: "1_1", message: "Hello" }',
          '    recipients: ["31612345678"]',
          '    expect: { status: denied }',
          '',
        ].join('\n'),
      );
      const result = sluice(['policy', 'test', '--dir', dir]);
      expect(result.status).toBe(1);
      expect(result.stdout).toContain(
        "FAIL typo.yaml:2: a recipient without consent is denied\n      purpose frontline-update selects no policy (the policies' purposes: frontline-updates); to test that its shares are refused, expect reasons [policy.none_matches]\n",
      );
      expect(result.stdout).toMatch(/\n11 passed, 1 failed\n$/);
    });

    it('fails a policy that no case exercises', () => {
      const dir = tempDir();
      cpSync(SHIPPED_POLICIES, dir, { recursive: true });
      writeFileSync(
        join(dir, 'staff-news.policy.yaml'),
        readFileSync(join(dir, 'frontline-updates.policy.yaml'), 'utf8').replace('name: frontline-updates', 'name: staff-news').replace('purpose: frontline-updates', 'purpose: staff-news'),
      );
      expect(sluice(['policy', 'lint', '--dir', dir]).status).toBe(0);
      const result = sluice(['policy', 'test', '--dir', dir]);
      expect(result.status).toBe(1);
      expect(result.stdout).toContain(`FAIL staff-news.policy.yaml: policy staff-news\n      no test case exercises it: add cases with purpose staff-news to ${join(dir, 'tests')}/*.yaml\n`);
      expect(result.stdout).toMatch(/\n11 passed, 1 failed\n$/);
    });

    it('fails every policy when there are no tests at all', () => {
      const dir = tempDir();
      cpSync(join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml'), join(dir, 'frontline-updates.policy.yaml'));
      const result = sluice(['policy', 'test', '--dir', dir]);
      expect(result.status).toBe(1);
      expect(result.stdout).toBe(`FAIL frontline-updates.policy.yaml: policy frontline-updates\n      no test case exercises it: add cases with purpose frontline-updates to ${join(dir, 'tests')}/*.yaml\n0 passed, 1 failed\n`);
    });
  });

  describe('diff', () => {
    /** A git repository whose HEAD holds the shipped policies, with `change` applied on top. */
    function repository(change: (policies: string) => void): string {
      const repo = tempDir();
      const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=Reviewer', '-c', 'user.email=reviewer@example.org', ...args], { stdio: 'pipe' });
      git('init', '-q');
      mkdirSync(join(repo, 'policies'));
      cpSync(SHIPPED_POLICIES, join(repo, 'policies'), { recursive: true });
      git('add', '.');
      git('commit', '-qm', 'policies as merged');
      change(join(repo, 'policies'));
      return repo;
    }

    it('shows what newly crosses and flags the risks of a careless change', () => {
      const repo = repository((policies) => cpSync(join(FIXTURES, 'changed', 'frontline-updates.policy.yaml'), join(policies, 'frontline-updates.policy.yaml')));
      const result = sluice(['policy', 'diff', '--base', 'HEAD', '--dir', join(repo, 'policies')]);
      expect(result.status).toBe(0);
      const markdown = result.stdout;
      expect(markdown).toContain('## Privacy diff of `policies/` against `HEAD`');
      expect(markdown).toContain('### `frontline-updates` (`frontline-updates.policy.yaml`, purpose `frontline-updates`)');
      for (const flag of [
        'GDPR Art. 9/10 special category `user.health_and_medical` newly crosses (`story`)',
        'consent requirement removed: recipients no longer need consent',
        'consent requirement removed: the author rule is gone',
        'consent requirement removed: the rule for mentioned people is gone',
        'consent requirement removed: `from.name` no longer needs its subject\'s consent',
        'recogniser `phone` no longer screens the free text',
        'lawful basis changed: consent → legitimate-interests',
        'free text without recognisers: `message` crosses with transform none',
        'media newly allowed: videos',
      ]) {
        expect(markdown).toContain(`- ⚠️ ${flag}`);
      }
      expect(markdown).toContain('| newly crosses | `story` | `user.health_and_medical` | `none` | — |');
      expect(markdown).toContain('| newly crosses | `created_time` | `system.operations` | `generalise(day)` | — |');
      expect(markdown).toContain('| changed | `message` | `user.content` | `redact-pii` → `none` | — |');
      expect(markdown).toContain('- Categories newly crossing: `system.operations`, `user.health_and_medical`');
      expect(markdown).not.toContain('media newly allowed: photos');
    });

    it('says so when nothing privacy-relevant changed', () => {
      const repo = repository((policies) => {
        const file = join(policies, 'frontline-updates.policy.yaml');
        writeFileSync(file, `${readFileSync(file, 'utf8')}\n# a comment for reviewers\n`);
      });
      const result = sluice(['policy', 'diff', '--base', 'HEAD', '--dir', join(repo, 'policies')]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('No privacy-relevant change');
      expect(result.stdout).toMatch(/Bundle: `sha256:[0-9a-f]{64}` → `sha256:[0-9a-f]{64}`/);
    });

    it("shows a change of the message's template: what it now carries and no longer does", () => {
      const repo = repository((policies) => {
        const file = join(policies, 'frontline-updates.policy.yaml');
        writeFileSync(file, readFileSync(file, 'utf8').replace('  template: |-\n    {from.name}:\n    {message}', '  template: |-\n    {message}'));
      });
      const result = sluice(['policy', 'diff', '--base', 'HEAD', '--dir', join(repo, 'policies')]);
      expect(result.status).toBe(0);
      expect(result.stdout).not.toContain('No privacy-relevant change');
      expect(result.stdout).toContain('- Delivery: `text "{from.name}:\\n{message}"` → `text "{message}"`');
      expect(result.stdout).toContain('- Fields in the message no longer crossing: `from.name`');
      // And back: the author's name newly reaches WhatsApp, though its allow-list entry never changed.
      const back = repository((policies) => {
        const file = join(policies, 'frontline-updates.policy.yaml');
        writeFileSync(file, readFileSync(file, 'utf8').replace('  template: |-\n    {from.name}:\n    {message}', '  template: |-\n    {message}'));
      });
      execFileSync('git', ['-C', back, '-c', 'user.name=R', '-c', 'user.email=r@example.org', 'commit', '-qam', 'without the name'], { stdio: 'pipe' });
      cpSync(join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml'), join(back, 'policies', 'frontline-updates.policy.yaml'));
      expect(sluice(['policy', 'diff', '--base', 'HEAD', '--dir', join(back, 'policies')]).stdout).toContain('- Fields in the message newly crossing: `from.name`');
    });

    it('shows a new policy whole, and a removed one', () => {
      const repo = repository((policies) => {
        const text = readFileSync(join(policies, 'frontline-updates.policy.yaml'), 'utf8');
        writeFileSync(join(policies, 'shift-swaps.policy.yaml'), text.replaceAll('frontline-updates', 'shift-swaps'));
      });
      const added = sluice(['policy', 'diff', '--base', 'HEAD', '--dir', join(repo, 'policies')]).stdout;
      expect(added).toContain('### New policy: `shift-swaps` (`shift-swaps.policy.yaml`, purpose `shift-swaps`)');
      expect(added).toContain('- ⚠️ media newly allowed: photos');
      expect(added).toContain('| newly crosses | `from.name` | `user.name` | `none` | `author` |');
      expect(added).not.toContain('`frontline-updates` (');

      rmSync(join(repo, 'policies', 'frontline-updates.policy.yaml'));
      const replaced = sluice(['policy', 'diff', '--base', 'HEAD', '--dir', join(repo, 'policies')]).stdout;
      expect(replaced).toContain('### Removed policy: `frontline-updates` (`frontline-updates.policy.yaml`)');
      expect(replaced).toContain('Nothing crosses for purpose `frontline-updates` any more (default deny).');
    });

    it('exits 2 on a revision that does not exist', () => {
      const repo = repository(() => undefined);
      const result = sluice(['policy', 'diff', '--base', 'no-such-branch', '--dir', join(repo, 'policies')]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(`cannot read ${join(repo, 'policies')} at no-such-branch: no-such-branch is not a commit of the repository`);
    });

    it('shows every policy as new against a revision without the policies folder', () => {
      const repo = repository(() => undefined);
      const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=R', '-c', 'user.email=r@example.org', ...args], { stdio: 'pipe' });
      git('mv', 'policies', 'data-policies');
      git('commit', '-qm', 'policies moved');
      const result = sluice(['policy', 'diff', '--base', 'HEAD~1', '--dir', join(repo, 'data-policies')]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('### New policy: `frontline-updates` (`frontline-updates.policy.yaml`, purpose `frontline-updates`)');
    });

    it('reads a policy file whose name is not ASCII at the base revision', () => {
      const repo = repository((policies) => {
        const text = readFileSync(join(policies, 'frontline-updates.policy.yaml'), 'utf8');
        rmSync(join(policies, 'frontline-updates.policy.yaml'));
        writeFileSync(join(policies, 'frontline-ü.policy.yaml'), text);
      });
      const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=R', '-c', 'user.email=r@example.org', ...args], { stdio: 'pipe' });
      git('add', '-A');
      git('commit', '-qm', 'renamed');
      const file = join(repo, 'policies', 'frontline-ü.policy.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('recipients:\n  # Each WhatsApp recipient must hold an active frontline-updates consent.\n  consent: { purpose: frontline-updates }', 'recipients: {}').replace('lawfulBasis: consent ', 'lawfulBasis: legitimate-interests '));
      const result = sluice(['policy', 'diff', '--base', 'HEAD', '--dir', join(repo, 'policies')]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('### `frontline-updates` (`frontline-ü.policy.yaml`, purpose `frontline-updates`)');
      expect(result.stdout).toContain('- ⚠️ consent requirement removed: recipients no longer need consent');
      expect(result.stdout).not.toContain('New policy');
    });
  });

  describe('diff through links', () => {
    it('reads a policy file that is a link at the base revision through to the file it names', () => {
      const repo = tempDir();
      const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=R', '-c', 'user.email=r@example.org', ...args], { stdio: 'pipe' });
      git('init', '-q');
      mkdirSync(join(repo, 'policies'));
      mkdirSync(join(repo, 'shared'));
      cpSync(join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml'), join(repo, 'shared', 'frontline.yaml'));
      symlinkSync('../shared/frontline.yaml', join(repo, 'policies', 'frontline-updates.policy.yaml'));
      symlinkSync('../shared/nothing.yaml', join(repo, 'policies', 'dangling.policy.yaml'));
      git('add', '-A');
      git('commit', '-qm', 'policies through links');
      const file = join(repo, 'shared', 'frontline.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('recipients:\n  # Each WhatsApp recipient must hold an active frontline-updates consent.\n  consent: { purpose: frontline-updates }', 'recipients: {}').replace('lawfulBasis: consent ', 'lawfulBasis: legitimate-interests '));
      rmSync(join(repo, 'policies', 'dangling.policy.yaml'));
      const result = sluice(['policy', 'diff', '--base', 'HEAD', '--dir', join(repo, 'policies')]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('- ⚠️ consent requirement removed: recipients no longer need consent');
      expect(result.stdout).not.toContain('New policy');
      expect(result.stdout).not.toContain('dangling');
    });
  });

  describe('explain', () => {
    it('shows what of a post would cross and why', () => {
      const dir = tempDir();
      const post = join(dir, 'post.json');
      writeFileSync(
        post,
        JSON.stringify({
          id: '1_2',
          message: 'Pieter Jansen: call me on 06-12345678',
          from: { id: '1001', name: 'Anna de Vries' },
          message_tags: [{ id: '1002', name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }],
          place: { name: 'Utrecht' },
        }),
      );
      const result = sluice(['policy', 'explain', 'frontline-updates', '--post', post, '--grant', 'whatsapp:31600000000,workplace:1001', '--dir', SHIPPED_POLICIES]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('decision: accepted');
      expect(result.stdout).toContain('  message  category user.content, transform redact-pii');
      expect(result.stdout).toContain('  from.name  category user.name, transform none, subject author');
      expect(result.stdout).toContain('  place  policy.drop');
      expect(result.stdout).toContain('  message  1 x mention');
      expect(result.stdout).toContain('  message  1 x phone');
      expect(result.stdout).toContain('  | Anna de Vries:\n  | [person]: call me on [phone]');
    });

    it('says that it fetches no photo given by URL, rather than leave the denial unexplained', () => {
      const dir = tempDir();
      const post = join(dir, 'post.json');
      const photo = { type: 'photo', media: { image: { src: 'https://scontent.xx.fbcdn.net/v/photo.jpg' } } };
      writeFileSync(post, JSON.stringify({ id: '1_2', message: 'New shelves', from: { id: '1001', name: 'Anna de Vries' }, attachments: { data: [photo] } }));
      const result = sluice(['policy', 'explain', 'frontline-updates', '--post', post, '--dir', SHIPPED_POLICIES]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('decision: denied (media.unreadable)');
      expect(result.stdout).toContain('note: attachments.data.0.media.image.src is a URL, which explain does not fetch: decided here as media.unreadable');
      // A video is refused by the shipped policy whatever its bytes: no note then.
      const video = { type: 'video', media: { source: 'https://video.xx.fbcdn.net/v/clip.mp4' } };
      writeFileSync(post, JSON.stringify({ id: '1_3', message: 'Clip', from: { id: '1001', name: 'Anna de Vries' }, attachments: { data: [video] } }));
      const refused = sluice(['policy', 'explain', 'frontline-updates', '--post', post, '--dir', SHIPPED_POLICIES]);
      expect(refused.stdout).toContain('decision: denied (media.type_not_allowed)');
      expect(refused.stdout).not.toContain('note:');
    });
  });
});
