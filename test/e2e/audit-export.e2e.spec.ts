import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseVerifierKey, verifyCheckpoint } from '../../src/audit/domain/checkpoint.js';
import { checkConsistency, checkInclusion, InMemoryMerkleLog, leafHash } from '../../src/audit/domain/merkle.js';
import { verifyBundle } from '../../src/audit/verifier/bundle-verifier.js';
import { ApiKeyService } from '../../src/platform/auth/api-key.service.js';
import { ensureBuilt } from '../support/build.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest } from '../support/fixtures.js';
import { REPO_ROOT, type RunningApp, startTestApp } from '../support/test-app.js';

const b64 = (text: string) => Buffer.from(text, 'base64');

describeEachDatabase('the DPO audits the log: proofs, export and offline verification', (dialect) => {
  let sluice: RunningApp;
  let publicKey: string;
  let dir: string;

  /** Waits until every queued entry is in the tree and a checkpoint covers it; returns the tree size. */
  async function settled(): Promise<number> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const [{ queued }] = await sluice.database.adminQuery<{ queued: number }>('SELECT COUNT(*) AS queued FROM audit_queue');
      const [{ entries }] = await sluice.database.adminQuery<{ entries: number }>('SELECT COUNT(*) AS entries FROM audit_entries');
      const [{ covered }] = await sluice.database.adminQuery<{ covered: number }>('SELECT COALESCE(MAX(tree_size), 0) AS covered FROM audit_checkpoints');
      if (Number(queued) === 0 && Number(covered) === Number(entries)) return Number(covered);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('the log did not settle');
  }

  async function addActivity(): Promise<number> {
    for (const [type, id] of [['whatsapp', RECIPIENT], ['workplace', AUTHOR_ID]] as const) await sluice.request('POST', '/v1/consents', { body: consent(type, id) });
    expect((await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey() })).status).toBe(201);
    await sluice.drainOutbox();
    return settled();
  }

  /** The entries as the API serves them, with a tree of our own built from them: nothing taken on trust. */
  async function ownCopy(): Promise<{ texts: string[]; tree: InMemoryMerkleLog }> {
    const texts = (await sluice.request('GET', '/v1/audit/entries')).text.trim().split('\n').map((line) => (JSON.parse(line) as { entry: string }).entry);
    const tree = new InMemoryMerkleLog();
    tree.append(texts.map((t) => leafHash(Buffer.from(t, 'utf8'))));
    return { texts, tree };
  }

  const signedCheckpoint = async () => {
    const note = (await sluice.request('GET', '/v1/audit/checkpoint')).text;
    const verified = verifyCheckpoint(note, parseVerifierKey(publicKey));
    if (!verified.ok) throw new Error(verified.reason);
    return { note, ...verified.checkpoint };
  };

  /** Runs the real binary, as `npx sluice` does, against this gateway's database and keys. */
  function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): { status: number; stdout: string; stderr: string } {
    const { config } = sluice;
    const env = {
      ...process.env,
      ...extraEnv,
      DATA_DIR: config.dataDir,
      AUDIT_SIGNING_KEY: config.auditSigningKey!.export({ type: 'pkcs8', format: 'pem' }).toString(),
      SLUICE_MASTER_KEY: config.masterKey!.toString('base64'),
      ...(config.database.type === 'sqlite' ? { SQLITE_PATH: config.database.path, DATABASE_URL: '' } : { DATABASE_URL: config.database.url }),
    };
    const result = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'sluice.js'), ...args], { cwd: dir, encoding: 'utf8', env });
    return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  }

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'sluice-dpo-'));
    sluice = await startTestApp(dialect);
    await addActivity();
    // A message cancelled by a withdrawal before it went out, and a person erased.
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', '31633333333') });
    expect((await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId: '31633333333' }] }), headers: idempotencyKey() })).status).toBe(201);
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', '31633333333', 'withdrawn') });
    await sluice.drainOutbox();
    expect((await sluice.request('POST', '/v1/subjects/whatsapp/31633333333/erase')).status).toBeLessThan(300);
    await addActivity();
    publicKey = (await sluice.request('GET', '/v1/audit/public-key')).text.trim();
  }, 180_000);
  afterAll(async () => {
    await sluice?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('proofs over HTTP', () => {
    it('proves every entry in every tree size and every two sizes consistent, against roots recomputed from the entries and the signed checkpoint', async () => {
      const { texts, tree } = await ownCopy();
      const size = texts.length;
      const kinds = new Set(texts.map((t) => (JSON.parse(t) as { kind: string }).kind));
      expect([...kinds].sort()).toEqual(['consent.granted', 'consent.withdrawn', 'message.cancelled', 'message.sent', 'policy.activated', 'share.decided', 'subject.erased']);
      expect(Buffer.from((await signedCheckpoint()).root).equals(tree.root())).toBe(true);
      const failures: string[] = [];
      for (let treeSize = 1; treeSize <= size; treeSize++) {
        const root = tree.root(treeSize);
        for (let index = 0; index < treeSize; index++) {
          const response = await sluice.request('GET', `/v1/audit/proofs/inclusion?index=${index}&size=${treeSize}`);
          const { leafHash: leaf, rootHash, proof } = response.json as { leafHash: string; rootHash: string; proof: string[] };
          const leafOfEntry = leafHash(Buffer.from(texts[index]!, 'utf8'));
          const ok =
            response.status === 200 &&
            b64(leaf).equals(leafOfEntry) &&
            b64(rootHash).equals(root) &&
            checkInclusion(leafOfEntry, index, treeSize, proof.map(b64), root).ok;
          if (!ok) failures.push(`inclusion ${index} in ${treeSize}`);
        }
        for (let from = 1; from <= treeSize; from++) {
          const response = await sluice.request('GET', `/v1/audit/proofs/consistency?from=${from}&to=${treeSize}`);
          const { fromRootHash, toRootHash, proof } = response.json as { fromRootHash: string; toRootHash: string; proof: string[] };
          const ok =
            response.status === 200 &&
            b64(fromRootHash).equals(tree.root(from)) &&
            b64(toRootHash).equals(root) &&
            checkConsistency(from, treeSize, proof.map(b64), tree.root(from), root).ok;
          if (!ok) failures.push(`consistency ${from} -> ${treeSize}`);
        }
      }
      expect(failures).toEqual([]);
      expect((await sluice.request('GET', '/v1/audit/proofs/inclusion?index=2&size=5')).json).toEqual({
        index: 2,
        size: 5,
        leafHash: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/),
        rootHash: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/),
        proof: expect.any(Array),
      });
    });

    it.each([
      ['inclusion', '', ['index: index is required', 'size: size is required']],
      ['inclusion', '?index=5&size=5', ['index: index must be below size (5)']],
      ['inclusion', '?index=0&size=0', ['size: size must be at least 1: an empty tree includes nothing', 'index: index must be below size (0)']],
      ['inclusion', '?index=9999&size=100000', ['size: size 100000 is above the current tree size {size}']],
      ['inclusion', '?index=-1&size=1e3', ['index: index must be a non-negative integer', 'size: size must be a non-negative integer']],
      ['inclusion', '?index=1&index=2&size=x', ['index: index is given more than once', 'size: size must be a non-negative integer']],
      ['inclusion', '?index=007&size=99999999999999999999', ['index: index must be written without leading zeros', 'size: size must be at most 9007199254740991']],
      ['consistency', '', ['from: from is required', 'to: to is required']],
      ['consistency', '?from=0&to=3', ['from: from must be at least 1: there is no consistency proof from an empty tree']],
      ['consistency', '?from=4&to=3', ['to: to must not be below from (4)']],
      ['consistency', '?from=1&to=100000', ['to: to 100000 is above the current tree size {size}']],
      ['consistency', '?from=0&to=100000', ['from: from must be at least 1: there is no consistency proof from an empty tree', 'to: to 100000 is above the current tree size {size}']],
      ['consistency', '?from=100000&to=100000', ['from: from 100000 is above the current tree size {size}', 'to: to 100000 is above the current tree size {size}']],
    ])('answers %s%s with 400 problem+json naming every bad parameter', async (kind, query, expected) => {
      const size = await settled();
      const response = await sluice.request('GET', `/v1/audit/proofs/${kind}${query}`);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      const errors = (response.json.errors as { path: string; message: string }[]).map((e) => `${e.path}: ${e.message}`);
      expect(errors).toEqual(expected.map((e) => e.replace('{size}', String(size))));
    });

    it.each([
      ['?from=', ['from: from must be a non-negative integer']],
      ['?from=1e2&to=0x10', ['from: from must be a non-negative integer', 'to: to must be a non-negative integer']],
      ['?from=5&to=2', ['to: to must not be below from']],
    ])('answers GET /v1/audit/entries%s with 400 naming every bad parameter, as the proof routes do', async (query, expected) => {
      const response = await sluice.request('GET', `/v1/audit/entries${query}`);
      expect(response.status).toBe(400);
      expect((response.json.errors as { path: string; message: string }[]).map((e) => `${e.path}: ${e.message}`)).toEqual(expected);
    });

    it('needs the audit:read scope, for proofs and for the export', async () => {
      const { secret } = await sluice.app.get(ApiKeyService).create('shares only', ['shares:read']);
      for (const path of ['/v1/audit/proofs/inclusion?index=0&size=1', '/v1/audit/proofs/consistency?from=1&to=1', '/v1/audit/export']) {
        expect((await sluice.request('GET', path, { key: secret })).status).toBe(403);
        expect((await sluice.request('GET', path, { key: null })).status).toBe(401);
      }
    });
  });

  describe('the export over HTTP', () => {
    it('streams NDJSON and CSV bundles of the whole log or of a range, each verifying offline against the log key', async () => {
      const size = await settled();
      for (const [query, format, since, until] of [
        ['', 'ndjson', 0, size - 1],
        ['?format=csv', 'csv', 0, size - 1],
        [`?since=2&until=${size - 3}`, 'ndjson', 2, size - 3],
        [`?since=${size - 1}&format=csv`, 'csv', size - 1, size - 1],
      ] as const) {
        const response = await sluice.request('GET', `/v1/audit/export${query}`);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toBe(format === 'ndjson' ? 'application/x-ndjson' : 'text/csv; charset=utf-8; header=present');
        expect(response.headers.get('content-disposition')).toBe(`attachment; filename="sluice-audit-${since}-${until}.${format}"`);
        const report = await verifyBundle(Buffer.from(response.text, 'utf8'), { publicKey });
        expect([query, report.ok, report.failure]).toEqual([query, true, null]);
        expect(report).toMatchObject({ format, entries: until - since + 1 });
      }
    });

    it("carries a consistency proof from the DPO's kept checkpoint, which the verifier checks against it after the log grew", async () => {
      const kept = await signedCheckpoint();
      const size = await addActivity();
      expect(size).toBeGreaterThan(kept.size);
      const since = size - 2;
      const without = await sluice.request('GET', `/v1/audit/export?since=${since}`);
      expect((await verifyBundle(Buffer.from(without.text, 'utf8'), { publicKey, trustedCheckpoint: kept.note })).failure?.reason).toMatch(
        new RegExp(`^the bundle carries no consistency proof from tree size ${kept.size}`),
      );
      const withProof = await sluice.request('GET', `/v1/audit/export?since=${since}&consistencyFrom=${kept.size}`);
      const report = await verifyBundle(Buffer.from(withProof.text, 'utf8'), { publicKey, trustedCheckpoint: kept.note });
      expect(report.failure).toBeNull();
      expect(report.checked.join('\n')).toContain(`consistency trusted checkpoint (tree size ${kept.size}) -> tree size ${size}: RFC 9162 consistency proof`);
    });

    it('answers 400 problem+json naming every bad parameter', async () => {
      const size = await settled();
      const problems = async (query: string) => {
        const response = await sluice.request('GET', `/v1/audit/export${query}`);
        expect(response.status).toBe(400);
        return (response.json.errors as { path: string; message: string }[]).map((e) => `${e.path}: ${e.message}`);
      };
      expect(await problems('?since=-1&until=x&format=xml&consistencyFrom=1.5')).toEqual([
        'since: since must be a non-negative integer',
        'until: until must be a non-negative integer',
        'consistencyFrom: consistencyFrom must be a non-negative integer',
        'format: format must be ndjson or csv',
      ]);
      expect(await problems(`?since=${size}&until=${size + 5}&consistencyFrom=0`)).toEqual([
        `since: since must be below the latest checkpoint's tree size (${size})`,
        `until: until must be below the latest checkpoint's tree size (${size})`,
        `consistencyFrom: a consistency proof can start at a tree size from 1 to the latest checkpoint's (${size})`,
      ]);
      expect(await problems('?since=3&until=2')).toEqual(['until: until must not be below since (3)']);
    });
  });

  describe('npx sluice audit', () => {
    it('exports to a file and verifies it offline: exit 0, saying what it checked', () => {
      for (const format of ['ndjson', 'csv']) {
        const bundle = join(dir, `all.${format}`);
        const exported = cli(['audit', 'export', '--format', format, '--out', bundle]);
        expect([exported.status, exported.stderr]).toEqual([0, '']);
        expect(exported.stdout).toMatch(new RegExp(`^exported entries 0\\.\\.\\d+ \\(\\d+\\) with the checkpoint of tree size \\d+ to ${bundle.replaceAll('.', '\\.')}\n$`));
        const verified = cli(['audit', 'verify', bundle, '--public-key', publicKey]);
        expect([verified.status, verified.stderr]).toEqual([0, 'warning: no trusted checkpoint given: whether the log was rewritten since you last kept one is not checked (--trusted-checkpoint)\n']);
        expect(verified.stdout).toMatch(
          new RegExp(
            `^bundle {6}${bundle.replaceAll('.', '\\.')} \\(${format === 'ndjson' ? 'NDJSON' : 'CSV'}\\)\n` +
              `public key  ${publicKey.replaceAll('+', '\\+')} \\(given\\)\n` +
              'checkpoint  sluice\\.local/audit, tree size \\d+, root \\S+: signature by sluice\\.local/audit OK\n' +
              'entries {5}0\\.\\.\\d+ \\(\\d+\\): valid UTF-8, canonical JSON \\(RFC 8785\\), audit-entry\\.schema\\.json, indices contiguous and in order, leaf hashes as recorded\n' +
              "root {8}entries \\+ range proof \\(0 hash\\(es\\) left, 0 right\\) = the checkpoint's root of tree size \\d+: OK\n" +
              'OK {10}\\d+ entries verified in [0-9.]+ s(, [0-9,]+ entries/s)?\n$',
          ),
        );
      }
    });

    it('keeps a checkpoint, and after the log grew exports with a consistency proof from it that verify checks', async () => {
      const kept = join(dir, 'kept.checkpoint');
      // As `jq -r .checkpoint` keeps it on Windows: one more newline, and CRLF line ends.
      writeFileSync(kept, `${(await signedCheckpoint()).note}\n`.replaceAll('\n', '\r\n'));
      const size = await addActivity();
      const bundle = join(dir, 'since-kept.ndjson');
      const exported = cli(['audit', 'export', '--since', String(size - 1), '--trusted-checkpoint', kept, '--out', bundle]);
      expect(exported.status).toBe(0);
      expect(exported.stdout).toMatch(/, and a consistency proof from tree size \d+\n$/);
      const keyFile = join(dir, 'log.vkey');
      writeFileSync(keyFile, `${publicKey}\n`);
      const verified = cli(['audit', 'verify', bundle, '--public-key', keyFile, '--trusted-checkpoint', kept]);
      expect(verified.status).toBe(0);
      expect(verified.stdout).toMatch(/consistency trusted checkpoint \(tree size \d+\) -> tree size \d+: RFC 9162 consistency proof of \d+ hashes OK\n/);
      // Only the last entry was exported: those between the kept checkpoint and it were not read, and it says so.
      expect(verified.stderr).toMatch(/^warning: entries \d+\.\.\d+, logged since the trusted checkpoint, are not in this bundle and were not read: export from --since \d+ to review them\n$/);
    });

    it('fails a tampered export with exit 1, naming the first bad index and why', () => {
      const lines = readFileSync(join(dir, 'all.ndjson'), 'utf8').split('\n');
      lines[4] = lines[4]!.replace(/"time":"\d/, '"time":"1');
      const bundle = join(dir, 'tampered.ndjson');
      writeFileSync(bundle, lines.join('\n'));
      const verified = cli(['audit', 'verify', bundle, '--public-key', publicKey]);
      expect(verified.status).toBe(1);
      expect(verified.stderr).toContain('FAILED at index 3: the entry does not hash to the leaf hash recorded for it: the entry or its leaf hash was changed\n');
      expect(verified.stdout).toMatch(/^bundle .*\npublic key .*\ncheckpoint .* OK\n$/);
      const badRange = cli(['audit', 'export', '--since', '5', '--until', '2']);
      expect([badRange.status, badRange.stderr]).toEqual([2, '--until: until must not be below since (5)\n']);
    });

    it('names every bad option at once, and only what is wrong', () => {
      const all = cli(['audit', 'export', '--since', '5', '--until', '3', '--format', 'xml', '--out', join(dir, 'no-such-folder', 'x.ndjson')]);
      expect(all.status).toBe(2);
      expect(all.stderr.split('\n').filter(Boolean).map((line) => line.split(':')[0])).toEqual(['--until', '--format', '--out']);
      // Past the end, --since alone is the problem: the default --until is not blamed for it.
      expect(cli(['audit', 'export', '--since', '999999']).stderr).toMatch(/^--since: since must be below the latest checkpoint's tree size \(\d+\)\n$/);
    });

    it("embeds only the key that signed the log's checkpoint: another origin's would make a sound bundle fail", () => {
      const bundle = join(dir, 'other-origin.ndjson');
      const exported = cli(['audit', 'export', '--out', bundle], { AUDIT_LOG_ORIGIN: 'example.org/another-log' });
      expect(exported.status).toBe(0);
      expect(exported.stderr).toContain('did not sign the log');
      expect(JSON.parse(readFileSync(bundle, 'utf8').split('\n')[0]!)).toMatchObject({ publicKey: null });
      const verified = cli(['audit', 'verify', bundle, '--public-key', publicKey]);
      expect(verified.status).toBe(0);
      expect(verified.stdout).toMatch(/\nOK {10}\d+ entries verified/);
    });
  });
});
