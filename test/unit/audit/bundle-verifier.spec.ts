import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../../../src/audit/domain/canonical-json.js';
import { signCheckpoint } from '../../../src/audit/domain/checkpoint.js';
import { leafHash } from '../../../src/audit/domain/merkle.js';
import { csvEntryRow, ndjsonEntryLine } from '../../../src/audit/verifier/bundle-format.js';
import { BundleVerifier, verifyBundle, verifyBundleFile, type VerificationReport } from '../../../src/audit/verifier/bundle-verifier.js';
import { buildBundle, buildLog, entryBody, entryText, ORIGIN } from './bundle-fixtures.js';

const log = buildLog(40);
const verify = (bundle: Buffer | string, options: Parameters<typeof verifyBundle>[1] = {}) =>
  verifyBundle(Buffer.isBuffer(bundle) ? bundle : Buffer.from(bundle, 'utf8'), options);
const failureOf = (report: VerificationReport) => (report.ok ? 'verified' : `${report.failure!.index ?? '-'}: ${report.failure!.reason}`);

/** The bundle's lines, without their newlines (the last element is the empty rest after the final one). */
const linesOf = (bundle: Buffer) => bundle.toString('utf8').split('\n');
const joinLines = (lines: string[]) => lines.join('\n');

/** Every scalar of an entry with a path to it, for changing one at a time. */
function scalarPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, child]) => scalarPaths(child, [...path, Array.isArray(value) ? Number(key) : key]));
  }
  return [path];
}

/** A different value of the same type and shape: the last character of a string changed, a number plus one, a flag flipped. */
function altered(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value === '') return 'a';
    const last = value.at(-1)!;
    const replacement = /[0-8]/.test(last) ? String(Number(last) + 1) : last === 'a' ? 'b' : /[A-Za-z]/.test(last) ? 'a' : '0';
    return value.slice(0, -1) + replacement;
  }
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'boolean') return !value;
  return 0;
}

function withScalar(entry: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(entry) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path.at(-1)!] = value;
  return copy;
}

describe('offline verification of an export bundle', () => {
  it('verifies a bundle of the whole log, NDJSON and CSV, and says what it checked', async () => {
    for (const format of ['ndjson', 'csv'] as const) {
      const report = await verify(buildBundle(log, { format }));
      expect(failureOf(report)).toBe('verified');
      expect(report).toMatchObject({ format, entries: 40 });
      expect(report.checked.join('\n')).toMatch(/checkpoint {2}sluice\.test\/audit, tree size 40, root .+: signature by sluice\.test\/audit OK/);
      expect(report.checked.join('\n')).toMatch(/entries {5}0\.\.39 \(40\): valid UTF-8, canonical JSON \(RFC 8785\), audit-entry\.schema\.json, indices contiguous and in order, leaf hashes as recorded/);
      expect(report.checked.join('\n')).toMatch(/root {8}entries \+ range proof \(0 hash\(es\) left, 0 right\) = the checkpoint's root of tree size 40: OK/);
      expect(report.warnings.join('\n')).toMatch(/the public key is the bundle's own/);
      expect(report.warnings.join('\n')).toMatch(/no trusted checkpoint given/);
    }
  });

  it('says so when the line ends of a bundle were changed since the export', async () => {
    const ndjson = buildBundle(log).toString('utf8').replaceAll('\n', '\r\n');
    expect(failureOf(await verify(ndjson))).toBe('-: the header line ends in CRLF, not LF: the line ends were changed since the export (verify the file as it was exported)');
    const csv = buildBundle(log, { format: 'csv' }).toString('utf8').replaceAll('\r\n', '\n');
    expect(failureOf(await verify(csv))).toBe('-: the CSV column names end in LF, not CRLF: the line ends were changed since the export (verify the file as it was exported)');
  });

  it('verifies any range against a later checkpoint with the subtrees left and right of it', async () => {
    for (const [since, until, size] of [[0, 0, 1], [0, 0, 40], [39, 39, 40], [13, 21, 40], [16, 31, 37], [1, 38, 40], [5, 9, 10]] as const) {
      const report = await verify(buildBundle(log, { since, until, size }), { publicKey: log.publicKey });
      expect([since, until, size, failureOf(report)]).toEqual([since, until, size, 'verified']);
      expect(report.entries).toBe(until - since + 1);
    }
  });

  it('reads a bundle in chunks of any size, and from a file, with the same verdict', async () => {
    const bundle = buildBundle(log, { since: 3, until: 30 });
    // The first entry from index 3 on with a purpose is a consent.withdrawn, index 7.
    const tampered = Buffer.from(bundle.toString('utf8').replace('"purpose":"frontline-updates"', '"purpose":"frontline-updatez"'));
    for (const [bytes, verdict] of [[bundle, 'verified'], [tampered, '7: the entry does not hash to the leaf hash recorded for it: the entry or its leaf hash was changed']] as const) {
      for (const chunkSize of [1, 7, 64, 1000]) {
        const verifier = new BundleVerifier({ publicKey: log.publicKey });
        for (let at = 0; at < bytes.length; at += chunkSize) if (!(await verifier.push(bytes.subarray(at, at + chunkSize)))) break;
        expect(failureOf(await verifier.finish())).toBe(verdict);
      }
      const dir = mkdtempSync(join(tmpdir(), 'sluice-bundle-'));
      try {
        writeFileSync(join(dir, 'bundle.ndjson'), bytes);
        expect(failureOf(await verifyBundleFile(join(dir, 'bundle.ndjson'), { publicKey: log.publicKey }))).toBe(verdict);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  describe('the public key', () => {
    it('uses the given key, and refuses a bundle that names another', async () => {
      const report = await verify(buildBundle(log), { publicKey: `${log.publicKey}\n` });
      expect(failureOf(report)).toBe('verified');
      expect(report.warnings.join('\n')).not.toMatch(/bundle's own/);
      const other = buildLog(1, generateKeyPairSync('ed25519').privateKey).publicKey;
      expect(failureOf(await verify(buildBundle(log, { publicKey: other }), { publicKey: log.publicKey }))).toBe('-: the bundle names a public key other than the given one');
    });

    it('refuses a checkpoint the given key did not sign, even when the bundle names the signer', async () => {
      const forger = buildLog(40, generateKeyPairSync('ed25519').privateKey);
      expect(failureOf(await verify(buildBundle(forger, { publicKey: null }), { publicKey: log.publicKey }))).toBe('-: the checkpoint: no signature by the trusted key');
      expect(failureOf(await verify(buildBundle(forger), { publicKey: log.publicKey }))).toBe('-: the bundle names a public key other than the given one');
    });

    it("refuses another log's checkpoint signed with the same key, relabelled as this log's", async () => {
      // A staging instance sharing production's signing key under another origin.
      const staging = signCheckpoint({ origin: 'staging.test/audit', size: 40, root: log.log.root(40), privateKey: log.signingKey });
      // The signature covers the body only; the key id on the line is recomputed for this log's name.
      const signatureLine = staging.split('\n').find((line) => line.startsWith('— '))!;
      const blob = Buffer.from(signatureLine.split(' ')[2]!, 'base64');
      Buffer.from(log.publicKey.split('+')[1]!, 'hex').copy(blob, 0);
      const relabelled = staging.replace(signatureLine, `— ${ORIGIN} ${blob.toString('base64')}`);
      expect(relabelled).not.toBe(staging);
      const [header, ...rest] = linesOf(buildBundle(log));
      const bundle = joinLines([JSON.stringify({ ...(JSON.parse(header!) as object), checkpoint: relabelled }), ...rest]);
      expect(failureOf(await verify(bundle, { publicKey: log.publicKey }))).toBe(`-: the checkpoint: it is of log staging.test/audit, not ${ORIGIN}, the log the key is for`);
    });

    it('needs a key from somewhere, and refuses one that is not a verifier key', async () => {
      expect(failureOf(await verify(buildBundle(log, { publicKey: null })))).toBe("-: the bundle carries no public key: pass the log's key with --public-key");
      expect(failureOf(await verify(buildBundle(log), { publicKey: 'sluice.test/audit+00000000+AAAA' }))).toMatch(/^-: the given public key: /);
    });
  });

  describe('the trusted checkpoint (the one the DPO kept)', () => {
    it('accepts the same tree, or one the entries lead to, recomputing its root from them', async () => {
      for (const [trustedSize, since, until] of [[40, 0, 39], [25, 10, 39], [10, 10, 39], [40, 10, 39], [30, 0, 29]] as const) {
        const report = await verify(buildBundle(log, { since, until }), { publicKey: log.publicKey, trustedCheckpoint: log.checkpoint(trustedSize) });
        expect([trustedSize, failureOf(report)]).toEqual([trustedSize, 'verified']);
        expect(report.checked.join('\n')).toMatch(/consistency trusted checkpoint \(tree size \d+\)/);
      }
    });

    it('needs a consistency proof from a size outside the entries, and checks it', async () => {
      const trustedCheckpoint = log.checkpoint(12);
      expect(failureOf(await verify(buildBundle(log, { since: 20 }), { publicKey: log.publicKey, trustedCheckpoint }))).toMatch(
        /^-: the bundle carries no consistency proof from tree size 12: export again with --trusted-checkpoint/,
      );
      const report = await verify(buildBundle(log, { since: 20, consistencyFrom: 12 }), { publicKey: log.publicKey, trustedCheckpoint });
      expect(failureOf(report)).toBe('verified');
      expect(report.checked.join('\n')).toMatch(/consistency trusted checkpoint \(tree size 12\) -> tree size 40: RFC 9162 consistency proof of \d+ hashes OK/);
      // Entries 12 to 19 came after the kept checkpoint and are not in the bundle: said, not silent.
      expect(report.warnings).toContain('entries 12..19, logged since the trusted checkpoint, are not in this bundle and were not read: export from --since 12 to review them');
    });

    it('catches a log rewritten since the trusted checkpoint, with or without a proof', async () => {
      // Entry 5 replaced, the tree re-hashed and re-signed with the log's own key.
      const forked = buildLogFromTexts(log.texts.map((text, i) => (i === 5 ? entryText(5, 'consent.withdrawn') : text)));
      const trustedCheckpoint = log.checkpoint(12);
      const withinRange = await verify(buildBundle(forked, { since: 0 }), { publicKey: log.publicKey, trustedCheckpoint });
      expect(failureOf(withinRange)).toBe("-: the log's root at tree size 12, recomputed from the entries up to index 11, is not the trusted checkpoint's: the log was rewritten");
      const byProof = await verify(buildBundle(forked, { since: 20, consistencyFrom: 12 }), { publicKey: log.publicKey, trustedCheckpoint });
      expect(failureOf(byProof)).toBe("-: the log's root at tree size 12 is not the trusted checkpoint (tree size 12)'s: the log was rewritten");
      const sameSize = await verify(buildBundle(forked), { publicKey: log.publicKey, trustedCheckpoint: log.checkpoint(40) });
      expect(failureOf(sameSize)).toBe("-: the trusted checkpoint (tree size 40) and the bundle's checkpoint have the same size and different roots: the log was rewritten");
    });

    it('refuses a trusted checkpoint larger than the bundle, of another log, or not signed by the key', async () => {
      const options = (trustedCheckpoint: string) => ({ publicKey: log.publicKey, trustedCheckpoint });
      expect(failureOf(await verify(buildBundle(log, { size: 30, until: 29 }), options(log.checkpoint(31))))).toMatch(/^-: the trusted checkpoint \(tree size 31\) is larger than the bundle's checkpoint \(tree size 30\): the log lost entries/);
      const otherOrigin = signCheckpoint({ origin: 'other.example/log', size: 3, root: log.log.root(3), privateKey: log.signingKey, keyName: ORIGIN });
      expect(failureOf(await verify(buildBundle(log), options(otherOrigin)))).toBe('-: the trusted checkpoint (tree size 3) is of log other.example/log, the bundle of sluice.test/audit');
      const foreign = buildLog(40, generateKeyPairSync('ed25519').privateKey).checkpoint(3);
      expect(failureOf(await verify(buildBundle(log), options(foreign)))).toBe('-: the trusted checkpoint: no signature by the trusted key');
    });

    it('checks a bundled consistency proof even without a trusted checkpoint', async () => {
      const bundle = buildBundle(log, { consistencyFrom: 7 });
      const report = await verify(bundle, { publicKey: log.publicKey });
      expect(failureOf(report)).toBe('verified');
      expect(report.checked.join('\n')).toMatch(/consistency proof from tree size 7 \(\d+ hashes\) holds; not compared: no trusted checkpoint given/);
      const header = JSON.parse(linesOf(bundle)[0]!) as { consistency: { fromRoot: string } };
      const wrongRoot = bundle.toString('utf8').replace(header.consistency.fromRoot, Buffer.from(log.log.root(8)).toString('base64'));
      expect(failureOf(await verify(wrongRoot, { publicKey: log.publicKey }))).toMatch(/^-: the consistency proof from tree size 7: /);
    });
  });

  describe('an altered NDJSON bundle fails, naming the first bad index', () => {
    const since = 2;
    const bundle = buildBundle(log, { since, until: 37 });
    const lines = linesOf(bundle);
    const options = { publicKey: log.publicKey };
    const entryLineOf = (index: number) => lines[index - since + 1]!;
    const textOf = (index: number) => entryLineOf(index).slice(63, -1);
    const leafOf = (index: number) => Buffer.from(entryLineOf(index).slice(9, 53), 'base64');
    const replaceLine = (index: number, line: string) => joinLines(lines.map((l, i) => (i === index - since + 1 ? line.replace(/\n$/, '') : l)));

    it('any field of any entry changed, re-canonicalised so it still looks right: that entry', async () => {
      const failures: string[] = [];
      for (let index = since; index <= 37; index++) {
        const entry = JSON.parse(textOf(index)) as unknown;
        for (const path of scalarPaths(entry)) {
          const changed = canonicalJson(withScalar(entry, path, altered(path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], entry))));
          const report = await verify(replaceLine(index, ndjsonEntryLine(leafOf(index), changed)), options);
          if (report.ok || report.failure!.index !== index) failures.push(`${index} ${path.join('.')}: ${failureOf(report)}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it('an entry and its leaf hash changed together: the root no longer matches', async () => {
      const changed = textOf(9).replace('"frontline-updates"', '"frontline-updatez"');
      const report = await verify(replaceLine(9, ndjsonEntryLine(leafHash(Buffer.from(changed)), changed)), options);
      expect(failureOf(report)).toBe("-: the entries 2..37 with the range proof do not hash to the checkpoint's root: an entry together with its leaf hash, or a hash of the range proof, was changed");
    });

    it('a leaf hash changed: its entry', async () => {
      expect(failureOf(await verify(replaceLine(11, ndjsonEntryLine(leafHash(Buffer.from('x')), textOf(11))), options))).toBe(
        '11: the entry does not hash to the leaf hash recorded for it: the entry or its leaf hash was changed',
      );
    });

    it('an index changed, entries swapped, removed, repeated or added: the first out of place', async () => {
      const reindexed = textOf(14).replace('"index":14', '"index":15');
      expect(failureOf(await verify(replaceLine(14, ndjsonEntryLine(leafOf(14), reindexed)), options))).toMatch(/^14: the entry says index 15 where 14 belongs/);
      const failures: string[] = [];
      for (let index = since; index < 37; index++) {
        const at = index - since + 1;
        const swapped = [...lines];
        [swapped[at], swapped[at + 1]] = [swapped[at + 1]!, swapped[at]!];
        const removed = lines.filter((_, i) => i !== at);
        const repeated = [...lines.slice(0, at + 1), lines[at]!, ...lines.slice(at + 1)];
        for (const [what, altered, expected] of [['swapped', swapped, index], ['removed', removed, index], ['repeated', repeated, index + 1]] as const) {
          const report = await verify(joinLines(altered), options);
          if (report.ok || report.failure!.index !== expected) failures.push(`${what} ${index}: ${failureOf(report)}`);
        }
      }
      expect(failures).toEqual([]);
      const last = await verify(joinLines(lines.filter((_, i) => i !== lines.length - 2)), options);
      expect(failureOf(last)).toBe('37: the bundle ends before index 37: entries 37..37 that its header announces are missing');
      const next = entryText(38);
      const added = await verify(`${bundle.toString('utf8')}${ndjsonEntryLine(leafHash(Buffer.from(next)), next)}`, options);
      expect(failureOf(added)).toBe('38: the bundle holds entries after index 37, the last its header announces');
    });

    it('a line of the checkpoint changed: the checkpoint', async () => {
      const header = JSON.parse(lines[0]!) as { checkpoint: string };
      const noteLines = header.checkpoint.split('\n');
      const failures: string[] = [];
      for (const [i, line] of noteLines.entries()) {
        if (line === '') continue;
        // The size one up; otherwise the second-last character changed (the last may be padding).
        const changed = i === 1 ? String(Number(line) + 1) : `${line.slice(0, -2)}${line.at(-2) === 'A' ? 'B' : 'A'}${line.at(-1)}`;
        const note = noteLines.map((l, j) => (j === i ? changed : l)).join('\n');
        const report = await verify(joinLines([JSON.stringify({ ...header, checkpoint: note }), ...lines.slice(1)]), options);
        if (report.ok || report.failure!.index !== null || !report.failure!.reason.startsWith('the checkpoint: ')) failures.push(`line ${i}: ${failureOf(report)}`);
      }
      expect(failures).toEqual([]);
    });

    it('the range or a proof hash in the header changed: the header or the root', async () => {
      const header = JSON.parse(lines[0]!) as { since: number; until: number; rangeProof: { left: string[]; right: string[] } };
      const variants = [
        { ...header, since: 3 },
        { ...header, until: 36 },
        { ...header, until: 38 },
        { ...header, rangeProof: { ...header.rangeProof, left: [Buffer.from(leafHash(Buffer.from('x'))).toString('base64')] } },
        { ...header, rangeProof: { ...header.rangeProof, right: [] } },
      ];
      for (const variant of variants) expect(failureOf(await verify(joinLines([JSON.stringify(variant), ...lines.slice(1)]), options))).not.toBe('verified');
    });

    it('cut short at any byte', async () => {
      const short = buildBundle(log, { since: 30, until: 35 });
      const failures: string[] = [];
      for (let length = 0; length < short.length; length++) {
        const report = await verify(short.subarray(0, length), options);
        if (report.ok) failures.push(`cut at ${length}`);
      }
      expect(failures).toEqual([]);
    });

    it('random bytes changed anywhere: never verifies', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(fc.nat(bundle.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }), async (flips) => {
          const altered = Buffer.from(bundle);
          for (const [at, xor] of flips) altered[at]! ^= xor;
          if (altered.equals(bundle)) return;
          expect((await verify(altered, options)).ok).toBe(false);
          expect((await verify(altered)).ok).toBe(false);
        }),
        { numRuns: 400 },
      );
    });

    it('not a bundle at all: says so', async () => {
      expect(failureOf(await verify(''))).toBe('-: the bundle is empty');
      expect(failureOf(await verify('hello\n'))).toMatch(/^-: this is not an audit export bundle/);
      expect(failureOf(await verify(lines[0]!))).toBe('-: the bundle ends in the middle of a line: it was cut short');
      expect(failureOf(await verify(`${lines[0]!}\n`))).toBe('2: the bundle ends before index 2: entries 2..37 that its header announces are missing');
      expect(failureOf(await verify(bundle.toString('utf8').replaceAll('\n', '\r\n'), options))).toMatch(/^-: the header/);
      expect(failureOf(await verify(`${JSON.stringify(JSON.parse(lines[0]!), null, 1).replaceAll('\n', '')}\n${joinLines(lines.slice(1))}`, options))).toBe('-: the header is not in the compact form the exporter writes');
    });
  });

  it('refuses an entry whose purpose is (unlisted) without its digest, or in clear with one, hashed and signed as the log wrote it', async () => {
    const unlisted = (kind: string) => entryBody(kind, 17);
    const withoutDigest = ({ purposeDigest: _digest, ...body }: Record<string, unknown>) => body;
    const sealedWithoutDigest = withoutDigest(unlisted('share.decided'));
    const cases = [
      [entryText(6, 'consent.granted', withoutDigest(unlisted('consent.granted'))), "(top level) must have required property 'purposeDigest'"],
      [entryText(6, 'share.decided', sealedWithoutDigest), "(top level) must have required property 'purposeDigest'"],
      [entryText(6, 'consent.withdrawn', { ...unlisted('consent.withdrawn'), purpose: 'frontline-updates' }), 'purposeDigest must not be present'],
      [entryText(6, 'share.decided', { ...sealedWithoutDigest, purpose: 'frontline-updates' }), 'purposeSealed must not be present'],
    ] as const;
    for (const [text, why] of cases) {
      const forged = buildLogFromTexts(log.texts.slice(0, 12).map((t, i) => (i === 6 ? text : t)));
      for (const format of ['ndjson', 'csv'] as const) {
        expect(failureOf(await verify(buildBundle(forged, { format }), { publicKey: log.publicKey }))).toBe(`6: the entry does not match audit-entry.schema.json: ${why}`);
      }
    }
  });

  describe('an altered CSV bundle fails, naming the first bad index', () => {
    const bundle = buildBundle(log, { format: 'csv', until: 19 });
    const rows = bundle.toString('utf8').split('\r\n');
    const options = { publicKey: log.publicKey };
    const withRow = (index: number, row: string) => rows.map((r, i) => (i === index + 2 ? row : r)).join('\r\n');

    it('an entry, its leaf hash, or the index, kind or time column changed', async () => {
      // Index 7 is a consent.withdrawn: its purpose is in no column.
      const entry = JSON.parse(entryText(7)) as { index: number; kind: string; time: string };
      const leaf = Buffer.from(rows[9]!.split(',')[4]!, 'hex');
      const changed = entryText(7).replace('"frontline-updates"', '"frontline-updatez"');
      expect(failureOf(await verify(withRow(7, csvEntryRow(entry, leaf, changed).trimEnd()), options))).toMatch(/^7: the entry does not hash to the leaf hash/);
      expect(failureOf(await verify(withRow(7, csvEntryRow(entry, leafHash(Buffer.from('x')), entryText(7)).trimEnd()), options))).toMatch(/^7: the entry does not hash to the leaf hash/);
      for (const columns of [{ ...entry, index: 8 }, { ...entry, kind: 'message.sent' }, { ...entry, time: '2026-01-01T00:00:00.000Z' }]) {
        expect(failureOf(await verify(withRow(7, csvEntryRow(columns, leaf, entryText(7)).trimEnd()), options))).toBe("7: the row's index, kind or time column differs from the entry's");
      }
      expect(failureOf(await verify(withRow(7, rows[9]!.replace('""', '"')), options))).toMatch(/^7: the row is not entry,/);
      expect(failureOf(await verify(bundle.toString('utf8').replaceAll('\r\n', '\n'), options))).toMatch(/^-: the CSV column names end in LF, not CRLF/);
    });

    it('random bytes changed anywhere, or cut short: never verifies', async () => {
      await fc.assert(
        fc.asyncProperty(fc.nat(bundle.length - 1), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
          const altered = Buffer.from(bundle);
          altered[at]! ^= xor;
          expect((await verify(altered, options)).ok).toBe(false);
        }),
        { numRuns: 300 },
      );
      for (let length = 0; length < bundle.length; length += 13) expect((await verify(bundle.subarray(0, length), options)).ok).toBe(false);
    });
  });
});

/** A log of exactly these entries, signed by the same key as `log`: what an operator rewriting history could produce. */
function buildLogFromTexts(texts: string[]) {
  const fork = buildLog(0, log.signingKey);
  fork.texts.push(...texts);
  fork.log.append(texts.map((t) => leafHash(Buffer.from(t, 'utf8'))));
  return fork;
}
