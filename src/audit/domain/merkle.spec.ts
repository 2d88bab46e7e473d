import { beforeEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  appendLeaves,
  checkConsistency,
  checkInclusion,
  checkRange,
  CompactRange,
  consistencyProof,
  consistencyProofCoordinates,
  createLeafHasher,
  EMPTY_ROOT,
  frontierCoordinates,
  HASH_SIZE,
  inclusionProofCoordinates,
  InMemoryMerkleLog,
  leafHash,
  rangeCoordinates,
  rangeProof,
  rangeProofCoordinates,
  rootAt,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Buffer.from(h, 'hex');

/** The published RFC 6962 test vectors (transparency-dev/merkle testonly/constants.go). */
const LEAF_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(bytes);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const NODE_HASHES = [
  ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7', '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1'],
  ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0'],
  ['d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
];

/** RFC 6962 section 2.1 MTH, written recursively as the RFC states it: the test's own reference. */
function referenceRoot(leaves: Uint8Array[]): Uint8Array {
  const sha = (...parts: Uint8Array[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return sha(Buffer.from([0]), leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.from([1]), referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

function logOf(count: number): { log: InMemoryMerkleLog; leaves: Uint8Array[] } {
  const leaves = Array.from({ length: count }, (_, i) => Buffer.from(`entry ${i}`));
  const log = new InMemoryMerkleLog();
  log.append(leaves.map(leafHash));
  return { log, leaves };
}

function flipBit(hash: Uint8Array, bit: number): Uint8Array {
  const copy = Buffer.from(hash);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

function flipByte(hash: Uint8Array, byte: number): Uint8Array {
  const copy = Buffer.from(hash);
  copy[byte]! ^= 0xff;
  return copy;
}

/**
 * Every way to spoil a proof short of forging a hash: one byte of each node flipped (a different
 * byte for each node and proof, so every byte position is hit across the sizes), a node dropped
 * at either end, one added at either end, one repeated, two swapped, and nodes of 31 and 33 bytes.
 */
function corruptedVariants(proof: Uint8Array[], seed: number): [string, Uint8Array[]][] {
  const variants: [string, Uint8Array[]][] = proof.map((_, i) => [`byte of node ${i} flipped`, proof.map((h, j) => (j === i ? flipByte(h, (seed + 7 * i) % HASH_SIZE) : h))]);
  variants.push(['a node added at the end', [...proof, EMPTY_ROOT]], ['a node added at the start', [EMPTY_ROOT, ...proof]]);
  if (proof.length > 0) {
    variants.push(
      ['the first node dropped', proof.slice(1)],
      ['the last node dropped', proof.slice(0, -1)],
      ['a node repeated', [proof[0]!, ...proof]],
      ['a node of 31 bytes', proof.map((h, j) => (j === proof.length - 1 ? h.subarray(0, 31) : h))],
      ['a node of 33 bytes', proof.map((h, j) => (j === 0 ? Buffer.concat([h, Buffer.alloc(1)]) : h))],
    );
  }
  if (proof.length > 1 && hex(proof[0]!) !== hex(proof[1]!)) variants.push(['two nodes swapped', [proof[1]!, proof[0]!, ...proof.slice(2)]]);
  return variants;
}

describe('Merkle log: RFC 6962 test vectors', () => {
  it('has the empty root SHA-256("")', () => {
    expect(hex(EMPTY_ROOT)).toBe(ROOTS[0]);
    expect(hex(new InMemoryMerkleLog().root())).toBe(ROOTS[0]);
  });

  it.each(ROOTS.map((root, size) => [size, root] as const))('reproduces the published root of size %i', (size, root) => {
    const log = new InMemoryMerkleLog();
    log.append(LEAF_INPUTS.slice(0, size).map(leafHash));
    expect(hex(log.root())).toBe(root);
    expect(hex(referenceRoot(LEAF_INPUTS.slice(0, size)))).toBe(root);
  });

  it('stores exactly the published complete subtrees', () => {
    const log = new InMemoryMerkleLog();
    log.append(LEAF_INPUTS.map(leafHash));
    NODE_HASHES.forEach((level, l) => level.forEach((hash, i) => expect(hex(log.lookup(l, i)!)).toBe(hash)));
    expect(log.lookup(4, 0)).toBeUndefined();
  });

  it('gives every earlier root from the stored subtrees', () => {
    const log = new InMemoryMerkleLog();
    log.append(LEAF_INPUTS.map(leafHash));
    ROOTS.forEach((root, size) => expect(hex(rootAt(size, log.lookup))).toBe(root));
  });

  it.each([
    [0, 8, [NODE_HASHES[0]![1]!, NODE_HASHES[1]![1]!, NODE_HASHES[2]![1]!]],
    [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
    [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
    [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
    [0, 1, []],
  ])('gives the published inclusion proof of leaf %i in a tree of %i', (index, size, expected) => {
    const log = new InMemoryMerkleLog();
    log.append(LEAF_INPUTS.map(leafHash));
    const proof = log.inclusionProof(index, size);
    expect(proof.map(hex)).toEqual(expected);
    expect(verifyInclusion(leafHash(LEAF_INPUTS[index]!), index, size, proof, bytes(ROOTS[size]!))).toBe(true);
  });

  it.each([
    [1, 1, []],
    [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
    [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
    [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  ])('gives the published consistency proof from %i to %i', (from, to, expected) => {
    const log = new InMemoryMerkleLog();
    log.append(LEAF_INPUTS.map(leafHash));
    const proof = log.consistencyProof(from, to);
    expect(proof.map(hex)).toEqual(expected);
    expect(verifyConsistency(from, to, proof, bytes(ROOTS[from]!), bytes(ROOTS[to]!))).toBe(true);
  });
});

describe('Merkle log: every proof up to 256 leaves', () => {
  const MAX = 256;
  const { log, leaves } = logOf(MAX);
  const roots = Array.from({ length: MAX + 1 }, (_, size) => referenceRoot(leaves.slice(0, size)));
  const leafHashes = leaves.map(leafHash);
  const forged = leafHash(Buffer.from('forged'));
  // Every proof of every tree, generated once for the tests below (about 66,000 of them).
  const inclusion = Array.from({ length: MAX + 1 }, (_, size) => Array.from({ length: size }, (_, index) => log.inclusionProof(index, size)));
  const consistency = Array.from({ length: MAX + 1 }, (_, to) => Array.from({ length: to + 1 }, (_, from) => (from === 0 ? [] : log.consistencyProof(from, to))));
  // Failures are collected and asserted once: an expect() per proof would cost more than the proofs.
  let failures: string[];
  beforeEach(() => {
    failures = [];
  });
  const must = (condition: boolean, what: () => string) => {
    if (!condition) failures.push(what());
  };

  it('matches the reference root at every size', () => {
    for (let size = 0; size <= MAX; size++) must(hex(log.root(size)) === hex(roots[size]!), () => `root of ${size}`);
    expect(failures).toEqual([]);
  });

  it('verifies every inclusion proof and rejects it for any other leaf or index', () => {
    for (let size = 1; size <= MAX; size++) {
      for (let index = 0; index < size; index++) {
        const proof = inclusion[size]![index]!;
        const at = () => `leaf ${index} of ${size}`;
        must(inclusionProofCoordinates(index, size).length >= proof.length, at);
        must(checkInclusion(leafHashes[index]!, index, size, proof, roots[size]!).ok, at);
        must(!verifyInclusion(forged, index, size, proof, roots[size]!), at);
        if (size > 1) must(!verifyInclusion(leafHashes[index]!, (index + 1) % size, size, proof, roots[size]!), at);
      }
    }
    expect(failures).toEqual([]);
  });

  it('verifies every consistency proof and rejects it against other roots', () => {
    for (let to = 1; to <= MAX; to++) {
      for (let from = 1; from <= to; from++) {
        const proof = consistency[to]![from]!;
        const at = () => `${from} -> ${to}`;
        must(consistencyProofCoordinates(from, to).length >= proof.length, at);
        must(checkConsistency(from, to, proof, roots[from]!, roots[to]!).ok, at);
        if (from < to) {
          must(verifyConsistency(from, to, proof, roots[from - 1 || 1]!, roots[to]!) === (from === 1), at);
          must(verifyConsistency(from, to, proof, roots[from]!, roots[to - 1]!) === (from === to - 1 && proof.length === 0), at);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('detects any single flipped bit, a dropped or an extra proof hash', () => {
    for (const [index, size] of [[0, 64], [37, 64], [62, 63], [5, 6]] as const) {
      const proof = log.inclusionProof(index, size);
      const leaf = leafHash(leaves[index]!);
      proof.forEach((hash, i) => {
        for (let bit = 0; bit < 256; bit++) {
          const tampered = proof.map((h, j) => (j === i ? flipBit(hash, bit) : h));
          expect(verifyInclusion(leaf, index, size, tampered, roots[size]!)).toBe(false);
        }
      });
      expect(verifyInclusion(leaf, index, size, proof.slice(1), roots[size]!)).toBe(false);
      expect(verifyInclusion(leaf, index, size, [...proof, proof[0]!], roots[size]!)).toBe(false);
    }
    for (const [from, to] of [[3, 64], [32, 64], [7, 9], [1, 2]] as const) {
      const proof = log.consistencyProof(from, to);
      proof.forEach((hash, i) => {
        for (let bit = 0; bit < 256; bit++) {
          const tampered = proof.map((h, j) => (j === i ? flipBit(hash, bit) : h));
          expect(verifyConsistency(from, to, tampered, roots[from]!, roots[to]!)).toBe(false);
        }
      });
      expect(verifyConsistency(from, to, proof.slice(0, -1), roots[from]!, roots[to]!)).toBe(false);
      expect(verifyConsistency(from, to, [...proof, proof[0]!], roots[from]!, roots[to]!)).toBe(false);
    }
  });

  it('rejects malformed input without throwing', () => {
    const proof = log.inclusionProof(3, 10);
    const leaf = leafHash(leaves[3]!);
    expect(checkInclusion(leaf.subarray(0, 31), 3, 10, proof, roots[10]!).ok).toBe(false);
    expect(checkInclusion(leaf, 3, 10, [...proof.slice(1), Buffer.alloc(33)], roots[10]!).ok).toBe(false);
    expect(checkInclusion(leaf, 3, 10, proof, Buffer.alloc(16)).ok).toBe(false);
    expect(checkInclusion(leaf, 10, 10, proof, roots[10]!).ok).toBe(false);
    expect(checkInclusion(leaf, -1, 10, proof, roots[10]!).ok).toBe(false);
    expect(checkInclusion(leaf, 3, 0, [], EMPTY_ROOT).ok).toBe(false);
    expect(checkInclusion(leaf, 1.5, 10, proof, roots[10]!).ok).toBe(false);
    expect(checkConsistency(0, 10, [], EMPTY_ROOT, roots[10]!)).toEqual({ ok: false, reason: 'there is no consistency proof from an empty tree' });
    expect(checkConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT).ok).toBe(false);
    expect(checkConsistency(11, 10, [], roots[10]!, roots[10]!).ok).toBe(false);
    expect(checkConsistency(10, 10, [roots[1]!], roots[10]!, roots[10]!).ok).toBe(false);
    expect(checkConsistency(10, 10, [], roots[10]!, roots[9]!).ok).toBe(false);
    expect(checkConsistency(3, 10, [], roots[3]!, roots[10]!).ok).toBe(false);
    expect(checkConsistency(3, 10, log.consistencyProof(3, 10).map((h) => h.subarray(1)), roots[3]!, roots[10]!).ok).toBe(false);
    expect(() => log.inclusionProof(10, 10)).toThrow(RangeError);
    expect(() => log.consistencyProof(0, 10)).toThrow(RangeError);
  });

  /** Every leaf (every first size) of trees up to 64 leaves; beyond, the first two, a middle and the last. */
  const corruptedSample = (size: number) => (size <= 64 ? Array.from({ length: size }, (_, i) => i) : [...new Set([0, 1, size >> 1, size - 1])]);

  it('rejects every corrupted variant of the proofs of every tree: all of them up to 64 leaves', () => {
    for (let size = 1; size <= MAX; size++) {
      for (const index of corruptedSample(size)) {
        for (const [variant, corrupted] of corruptedVariants(inclusion[size]![index]!, size + index)) {
          must(!checkInclusion(leafHashes[index]!, index, size, corrupted, roots[size]!).ok, () => `inclusion of ${index} in ${size}: ${variant}`);
        }
        const from = index + 1;
        for (const [variant, corrupted] of corruptedVariants(consistency[size]![from]!, size + from)) {
          must(!checkConsistency(from, size, corrupted, roots[from]!, roots[size]!).ok, () => `consistency ${from} -> ${size}: ${variant}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('rejects every flipped byte of every node of a proof of every tree', () => {
    const everyByteFlipped = (proof: Uint8Array[], verifies: (corrupted: Uint8Array[]) => boolean, at: string) =>
      proof.forEach((node, i) => {
        for (let byte = 0; byte < HASH_SIZE; byte++) {
          must(!verifies(proof.map((h, j) => (j === i ? flipByte(node, byte) : h))), () => `${at}: byte ${byte} of node ${i}`);
        }
      });
    for (let size = 1; size <= MAX; size++) {
      // The first, second, middle or last leaf in turn, so every shape of path comes up.
      const index = [0, 1, size >> 1, size - 1][size % 4]! % size;
      everyByteFlipped(inclusion[size]![index]!, (p) => verifyInclusion(leafHashes[index]!, index, size, p, roots[size]!), `inclusion of ${index} in ${size}`);
      const from = index + 1;
      everyByteFlipped(consistency[size]![from]!, (p) => verifyConsistency(from, size, p, roots[from]!, roots[size]!), `consistency ${from} -> ${size}`);
    }
    expect(failures).toEqual([]);
  });
});

describe('Merkle log: properties', () => {
  it('gives the reference roots however the leaves are batched', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 20 }), (batches) => {
        const log = new InMemoryMerkleLog();
        const all: Uint8Array[] = [];
        for (const batch of batches) {
          const leaves = Array.from({ length: batch }, () => Buffer.from(`leaf ${all.length + Math.random()}`));
          all.push(...leaves);
          expect(hex(log.append(leaves.map(leafHash)))).toBe(hex(referenceRoot(all)));
        }
      }),
    );
  });

  it('writes fewer than two subtree nodes per leaf and reads only the frontier to append', () => {
    let size = 0;
    let frontier: ReturnType<typeof appendLeaves>['frontier'] = [];
    let written = 0;
    for (let i = 0; i < 1000; i++) {
      expect(frontier.map(({ level, index }) => ({ level, index }))).toEqual(frontierCoordinates(size));
      const result = appendLeaves(size, frontier, [leafHash(Buffer.from(String(i)))]);
      written += result.newNodes.length;
      ({ size, frontier } = result);
    }
    expect(written / size).toBeLessThan(2);
    expect(frontierCoordinates(1000)).toHaveLength(6);
  });

  it('refuses a frontier that does not belong to the size', () => {
    expect(() => appendLeaves(3, [], [leafHash(Buffer.from('x'))])).toThrow(/frontier/);
  });

  it('verifies inclusion and consistency for random trees and rejects random tampering', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }).chain((size) => fc.tuple(fc.constant(size), fc.integer({ min: 0, max: size - 1 }), fc.integer({ min: 1, max: size }), fc.nat(255))),
        ([size, index, from, bit]) => {
          const { log, leaves } = logOf(size);
          const root = log.root();
          const proof = log.inclusionProof(index);
          expect(verifyInclusion(leafHash(leaves[index]!), index, size, proof, root)).toBe(true);
          expect(verifyInclusion(leafHash(leaves[index]!), index, size, proof, flipBit(root, bit))).toBe(false);
          const consistency = log.consistencyProof(from);
          expect(verifyConsistency(from, size, consistency, log.root(from), root)).toBe(true);
          expect(verifyConsistency(from, size, consistency, flipBit(log.root(from), bit), root)).toBe(false);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('computes consistency proofs from stored subtrees only', () => {
    const { log } = logOf(20);
    expect(consistencyProof(5, 20, log.lookup).map(hex)).toEqual(log.consistencyProof(5, 20).map(hex));
  });
});

describe('Merkle log: ranges of leaves (export bundles)', () => {
  const MAX = 32;
  const { log, leaves } = logOf(MAX);
  const leafHashes = leaves.map(leafHash);
  const roots = Array.from({ length: MAX + 1 }, (_, size) => referenceRoot(leaves.slice(0, size)));

  it('ties every range of every tree up to 32 leaves to its root, from the stored subtrees alone', () => {
    const failures: string[] = [];
    for (let size = 1; size <= MAX; size++) {
      for (let start = 0; start < size; start++) {
        for (let end = start + 1; end <= size; end++) {
          const proof = rangeProof(start, end, size, log.lookup);
          const coordinates = rangeProofCoordinates(start, end, size);
          if (proof.left.length !== coordinates.left.length || proof.right.length !== coordinates.right.length) failures.push(`[${start}, ${end}) of ${size}: counts`);
          if (!checkRange(start, leafHashes.slice(start, end), size, proof, roots[size]!).ok) failures.push(`[${start}, ${end}) of ${size}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('rejects a range proof with any node, leaf or count changed', () => {
    const failures: string[] = [];
    for (const [start, end, size] of [[0, 32, 32], [5, 6, 32], [3, 17, 29], [16, 31, 31], [0, 1, 1], [7, 9, 20]] as const) {
      const proof = rangeProof(start, end, size, log.lookup);
      const range = leafHashes.slice(start, end);
      const root = roots[size]!;
      const variants: [string, number, Uint8Array[], { left: Uint8Array[]; right: Uint8Array[] }][] = [];
      for (const side of ['left', 'right'] as const) {
        proof[side].forEach((node, i) => {
          for (let byte = 0; byte < HASH_SIZE; byte++) {
            variants.push([`byte ${byte} of ${side} ${i}`, start, range, { ...proof, [side]: proof[side].map((h, j) => (j === i ? flipByte(node, byte) : h)) }]);
          }
        });
        variants.push([`a ${side} node added`, start, range, { ...proof, [side]: [...proof[side], EMPTY_ROOT] }]);
        if (proof[side].length > 0) {
          variants.push([`a ${side} node dropped`, start, range, { ...proof, [side]: proof[side].slice(1) }]);
          variants.push([`a ${side} node of 31 bytes`, start, range, { ...proof, [side]: proof[side].map((h) => h.subarray(1)) }]);
        }
      }
      range.forEach((leaf, i) => variants.push([`leaf ${start + i} changed`, start, range.map((h, j) => (j === i ? flipBit(leaf, 0) : h)), proof]));
      variants.push(['a leaf missing', start, range.slice(1), proof], ['a leaf added', start, [...range, leafHashes[0]!], proof]);
      variants.push(['the range moved', start + 1, range, proof], ['the leaves reversed', start, [...range].reverse(), proof]);
      for (const [variant, at, leavesOfRange, corrupted] of variants) {
        if (variant === 'the leaves reversed' && range.length === 1) continue;
        if (checkRange(at, leavesOfRange, size, corrupted, root).ok) failures.push(`[${start}, ${end}) of ${size}: ${variant}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('refuses malformed ranges without throwing', () => {
    const proof = rangeProof(2, 5, 9, log.lookup);
    const range = leafHashes.slice(2, 5);
    expect(checkRange(2, [], 9, proof, roots[9]!)).toEqual({ ok: false, reason: 'the range has no leaves' });
    expect(checkRange(2, range, 9, proof, roots[9]!.subarray(1)).ok).toBe(false);
    expect(checkRange(2, [range[0]!, Buffer.alloc(33)], 9, proof, roots[9]!).ok).toBe(false);
    expect(checkRange(-1, range, 9, proof, roots[9]!).ok).toBe(false);
    expect(checkRange(7, range, 9, proof, roots[9]!).ok).toBe(false);
    expect(checkRange(2.5, range, 9, proof, roots[9]!).ok).toBe(false);
    expect(checkRange(2, range, 9, { left: proof.left } as never, roots[9]!).ok).toBe(false);
    expect(() => rangeProofCoordinates(3, 3, 9)).toThrow(RangeError);
    expect(() => rangeProofCoordinates(3, 10, 9)).toThrow(RangeError);
    expect(() => CompactRange.ofPrefix(5, [])).toThrow(RangeError);
    expect(() => CompactRange.startingAt(3).root()).toThrow(RangeError);
    expect(() => CompactRange.startingAt(3).appendSubtree(1, EMPTY_ROOT)).toThrow(RangeError);
  });

  it('builds the complete subtrees of any range apart, and ranges appended in order give the root', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 200 }).chain((size) => fc.tuple(fc.constant(size), fc.uniqueArray(fc.integer({ min: 1, max: size - 1 }), { maxLength: 6 }))), ([size, cuts]) => {
        const { log: big, leaves: bigLeaves } = logOf(size);
        const hashes = bigLeaves.map(leafHash);
        const bounds = [0, ...cuts.sort((a, b) => a - b), size];
        const whole = CompactRange.ofPrefix(0, []);
        for (let i = 0; i + 1 < bounds.length; i++) {
          const part = CompactRange.startingAt(bounds[i]!);
          hashes.slice(bounds[i], bounds[i + 1]).forEach((h) => part.appendLeafHash(h));
          const nodes = part.nodes();
          expect(nodes.map(({ level, index }) => ({ level, index }))).toEqual(rangeCoordinates(bounds[i]!, bounds[i + 1]!));
          nodes.forEach((n) => expect(hex(n.hash)).toBe(hex(big.lookup(n.level, n.index)!)));
          nodes.forEach((n) => whole.appendSubtree(n.level, n.hash));
        }
        expect(hex(whole.root())).toBe(hex(big.root()));
      }),
      { numRuns: 40 },
    );
  });

  it('hashes leaves with a reused buffer exactly as leafHash does', () => {
    const hashLeaf = createLeafHasher();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 10_000 }), (leaf) => {
        expect(hex(hashLeaf(leaf))).toBe(hex(leafHash(leaf)));
      }),
    );
  });
});
