import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { parseVerifierKey, verifyCheckpoint } from '../../src/audit/domain/checkpoint.js';
import { checkInclusion, leafHash, rangeProofCoordinates } from '../../src/audit/domain/merkle.js';
import { verifyBundle } from '../../src/audit/verifier/bundle-verifier.js';
import { behindTheTriggers } from '../support/audit-log.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

const forgedHex = createHash('sha256').update('forged').digest('hex');

describeEachDatabase('tampering behind the append-only triggers is caught by export and offline verification', (dialect) => {
  let sluice: RunningApp;
  let publicKey: string;
  let size: number;
  const p = (n: number) => (dialect === 'postgres' ? `$${n}` : '?');

  /** Waits until every queued entry is in the tree and a checkpoint covers it. */
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

  const entryRow = async (index: number) =>
    (await sluice.database.adminQuery<{ entry: string; leaf_hash: string }>(`SELECT entry, leaf_hash FROM audit_entries WHERE idx = ${p(1)}`, [index]))[0]!;
  const subtreeHash = async (level: number, index: number) =>
    (await sluice.database.adminQuery<{ hash: string }>(`SELECT hash FROM audit_subtrees WHERE level = ${p(1)} AND idx = ${p(2)}`, [level, index]))[0]!.hash;
  const latestNote = async () => (await sluice.database.adminQuery<{ note: string }>(`SELECT note FROM audit_checkpoints WHERE tree_size = ${p(1)}`, [size]))[0]!.note;

  const setEntry = (index: number, entry: string, leaf: string) =>
    behindTheTriggers(sluice.database, dialect, 'audit_entries', `UPDATE audit_entries SET entry = ${p(1)}, leaf_hash = ${p(2)} WHERE idx = ${p(3)}`, [entry, leaf, index]);
  const setSubtree = (level: number, index: number, hash: string) =>
    behindTheTriggers(sluice.database, dialect, 'audit_subtrees', `UPDATE audit_subtrees SET hash = ${p(1)} WHERE level = ${p(2)} AND idx = ${p(3)}`, [hash, level, index]);
  const setNote = (note: string) =>
    behindTheTriggers(sluice.database, dialect, 'audit_checkpoints', `UPDATE audit_checkpoints SET note = ${p(1)} WHERE tree_size = ${p(2)}`, [note, size]);

  async function exportAndVerify(query = ''): Promise<string> {
    const response = await sluice.request('GET', `/v1/audit/export${query}`);
    expect(response.status).toBe(200);
    const report = await verifyBundle(Buffer.from(response.text, 'utf8'), { publicKey });
    return report.ok ? 'verified' : `${report.failure!.index ?? '-'}: ${report.failure!.reason}`;
  }

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    // Every kind the gateway writes on its own: the policy activation at start, consents, decisions, sends.
    for (const [type, id] of [['whatsapp', RECIPIENT], ['workplace', AUTHOR_ID], ['whatsapp', '31611111111'], ['whatsapp', '31622222222']] as const) {
      expect((await sluice.request('POST', '/v1/consents', { body: consent(type, id) })).status).toBe(201);
    }
    for (let i = 0; i < 3; i++) expect((await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey() })).status).toBe(201);
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', '31611111111', 'withdrawn') });
    await sluice.drainOutbox();
    size = await settled();
    expect(size).toBeGreaterThanOrEqual(12);
    publicKey = (await sluice.request('GET', '/v1/audit/public-key')).text.trim();
    expect(await exportAndVerify()).toBe('verified');
  }, 60_000);
  afterAll(async () => {
    await sluice?.close();
  });

  it('puts the triggers back: the owner changed the rows, the application still cannot', async () => {
    const { entry, leaf_hash: leaf } = await entryRow(1);
    await setEntry(1, entry, leaf);
    await expect(sluice.database.adminQuery(`UPDATE audit_entries SET entry = '{}' WHERE idx = 1`)).rejects.toThrow(/append-only/);
  });

  it("an entry's text changed: that entry, whose text no longer hashes to its leaf", async () => {
    const target = size >> 1;
    const { entry, leaf_hash: leaf } = await entryRow(target);
    const changed = entry.replace(/"time":"\d/, '"time":"1');
    expect(changed).not.toBe(entry);
    await setEntry(target, changed, leaf);
    expect(await exportAndVerify()).toBe(`${target}: the entry does not hash to the leaf hash recorded for it: the entry or its leaf hash was changed`);
    await setEntry(target, entry, leaf);
    expect(await exportAndVerify()).toBe('verified');
  });

  it("an entry's leaf hash changed: that entry", async () => {
    const target = size - 2;
    const { entry, leaf_hash: leaf } = await entryRow(target);
    await setEntry(target, entry, forgedHex);
    expect(await exportAndVerify()).toBe(`${target}: the entry does not hash to the leaf hash recorded for it: the entry or its leaf hash was changed`);
    expect(await exportAndVerify(`?since=${target}&until=${target}`)).toMatch(new RegExp(`^${target}: the entry does not hash`));
    await setEntry(target, entry, leaf);
    expect(await exportAndVerify()).toBe('verified');
  });

  it('an entry rewritten with a matching leaf hash: the root of the signed checkpoint', async () => {
    const target = 3;
    const { entry, leaf_hash: leaf } = await entryRow(target);
    const changed = entry.replace(/"time":"\d/, '"time":"1');
    await setEntry(target, changed, Buffer.from(leafHash(Buffer.from(changed, 'utf8'))).toString('hex'));
    expect(await exportAndVerify()).toMatch(/^-: the entries 0\.\.\d+ with the range proof do not hash to the checkpoint's root/);
    await setEntry(target, entry, leaf);
    expect(await exportAndVerify()).toBe('verified');
  });

  it('a subtree the export reads (left or right of the range) changed: the root of the signed checkpoint', async () => {
    const since = size - 3;
    const until = 2;
    for (const [query, { level, index }] of [
      [`?since=${since}`, rangeProofCoordinates(since, size, size).left[0]!],
      [`?until=${until}`, rangeProofCoordinates(0, until + 1, size).right.at(-1)!],
    ] as const) {
      const original = await subtreeHash(level, index);
      await setSubtree(level, index, forgedHex);
      expect(await exportAndVerify(query)).toMatch(/^-: the entries \d+\.\.\d+ with the range proof do not hash to the checkpoint's root/);
      await setSubtree(level, index, original);
      expect(await exportAndVerify(query)).toBe('verified');
    }
  });

  it('a subtree inside an exported range changed: the export recomputes it, but a proof that uses it fails', async () => {
    const target = 5;
    const original = await subtreeHash(0, target);
    await setSubtree(0, target, forgedHex);
    expect(await exportAndVerify()).toBe('verified');
    const key = parseVerifierKey(publicKey);
    const checkpoint = verifyCheckpoint((await sluice.request('GET', '/v1/audit/checkpoint')).text, key);
    if (!checkpoint.ok) throw new Error(checkpoint.reason);
    const entries = (await sluice.request('GET', `/v1/audit/entries?from=${target - 1}&to=${target}`)).text.trim().split('\n').map((l) => JSON.parse(l) as { index: number; entry: string });
    const verifies = async ({ index, entry }: { index: number; entry: string }) => {
      const proof = (await sluice.request('GET', `/v1/audit/proofs/inclusion?index=${index}&size=${size}`)).json as { proof: string[] };
      return checkInclusion(leafHash(Buffer.from(entry, 'utf8')), index, size, proof.proof.map((h) => Buffer.from(h, 'base64')), checkpoint.checkpoint.root).ok;
    };
    // Leaf 5's stored hash is the sibling in leaf 4's proof; leaf 5's own proof hashes its entry instead.
    expect(await verifies(entries[0]!)).toBe(false);
    expect(await verifies(entries[1]!)).toBe(true);
    await setSubtree(0, target, original);
    expect(await verifies(entries[0]!)).toBe(true);
  });

  it('the checkpoint note changed (its root, its size or its signature): the checkpoint', async () => {
    const note = await latestNote();
    const [origin, sizeLine, root, blank, signature] = note.split('\n');
    const forgedRoot = Buffer.from(forgedHex, 'hex').toString('base64');
    const lastSignatureChar = signature!.at(-2) === 'A' ? 'B' : 'A';
    for (const forged of [
      [origin, sizeLine, forgedRoot, blank, signature, ''].join('\n'),
      [origin, String(size + 1), root, blank, signature, ''].join('\n'),
      [origin, sizeLine, root, blank, `${signature!.slice(0, -2)}${lastSignatureChar}${signature!.at(-1)}`, ''].join('\n'),
    ]) {
      await setNote(forged);
      expect(await exportAndVerify()).toMatch(/^-: the checkpoint: /);
    }
    await setNote(note);
    expect(await exportAndVerify()).toBe('verified');
  });
});
