import { createHash, hash } from 'node:crypto';

/**
 * RFC 6962 / RFC 9162 section 2.1 Merkle tree over the audit log, persisted as complete subtrees.
 * Node (level, index) is the hash of leaves [index * 2^level, (index + 1) * 2^level); level 0
 * holds the leaf hashes. Functions here say which nodes they need, so a store can fetch them in
 * one query, and then compute from what they are given: no I/O, no framework.
 */

export const HASH_SIZE = 32;

export interface NodeCoordinate {
  level: number;
  index: number;
}

export interface SubtreeNode extends NodeCoordinate {
  hash: Uint8Array;
}

export type NodeLookup = (level: number, index: number) => Uint8Array | undefined;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

export const EMPTY_ROOT: Uint8Array = createHash('sha256').digest();

export function leafHash(leaf: Uint8Array): Uint8Array {
  return createHash('sha256').update(LEAF_PREFIX).update(leaf).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** The largest power of two smaller than n (n > 1): RFC 6962's split point. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The complete subtrees covering leaves [start, end), largest first. For a range that RFC 6962
 * hashes as one node (start aligned to a power of two at least end - start), folding these from
 * the right gives that node's hash.
 */
export function rangeCoordinates(start: number, end: number): NodeCoordinate[] {
  const nodes: NodeCoordinate[] = [];
  let at = start;
  while (at < end) {
    let level = 0;
    while (at % 2 ** (level + 1) === 0 && at + 2 ** (level + 1) <= end) level++;
    nodes.push({ level, index: at / 2 ** level });
    at += 2 ** level;
  }
  return nodes;
}

/** The right-edge complete subtrees of a tree of `size` leaves: all a new append needs. */
export function frontierCoordinates(size: number): NodeCoordinate[] {
  return rangeCoordinates(0, size);
}

function foldFromRight(hashes: Uint8Array[]): Uint8Array {
  let root = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) root = nodeHash(hashes[i]!, root);
  return root;
}

export function rootFromFrontier(size: number, frontier: SubtreeNode[]): Uint8Array {
  if (size === 0) return EMPTY_ROOT;
  return foldFromRight(frontier.map((n) => n.hash));
}

/**
 * Appends leaves to a tree of `size` leaves whose frontier is given. Returns every complete
 * subtree the append creates (leaves included: fewer than two nodes per leaf on average), the
 * new size, root and frontier.
 */
export function appendLeaves(
  size: number,
  frontier: SubtreeNode[],
  leafHashes: Uint8Array[],
): { newNodes: SubtreeNode[]; size: number; root: Uint8Array; frontier: SubtreeNode[] } {
  const expected = frontierCoordinates(size);
  if (frontier.length !== expected.length || frontier.some((n, i) => n.level !== expected[i]!.level || n.index !== expected[i]!.index)) {
    throw new Error(`appendLeaves: the frontier given does not belong to a tree of size ${size}`);
  }
  const stack = [...frontier];
  const newNodes: SubtreeNode[] = [];
  let next = size;
  for (const hash of leafHashes) {
    let node: SubtreeNode = { level: 0, index: next, hash };
    newNodes.push(node);
    while (stack.length > 0 && stack[stack.length - 1]!.level === node.level) {
      const left = stack.pop()!;
      node = { level: node.level + 1, index: left.index / 2, hash: nodeHash(left.hash, node.hash) };
      newNodes.push(node);
    }
    stack.push(node);
    next++;
  }
  return { newNodes, size: next, root: rootFromFrontier(next, stack), frontier: stack };
}

/** A proof node is MTH of a leaf range; it is computed from the range's complete subtrees. */
interface ProofRange {
  start: number;
  end: number;
}

function inclusionRanges(index: number, start: number, end: number): ProofRange[] {
  const n = end - start;
  if (n <= 1) return [];
  const k = splitPoint(n);
  return index - start < k
    ? [...inclusionRanges(index, start, start + k), { start: start + k, end }]
    : [...inclusionRanges(index, start + k, end), { start, end: start + k }];
}

function consistencyRanges(m: number, start: number, end: number, complete: boolean): ProofRange[] {
  const n = end - start;
  if (m === n) return complete ? [] : [{ start, end }];
  const k = splitPoint(n);
  return m <= k
    ? [...consistencyRanges(m, start, start + k, complete), { start: start + k, end }]
    : [...consistencyRanges(m - k, start + k, end, false), { start, end: start + k }];
}

function coordinatesOf(ranges: ProofRange[]): NodeCoordinate[] {
  return ranges.flatMap((r) => rangeCoordinates(r.start, r.end));
}

function hashRanges(ranges: ProofRange[], lookup: NodeLookup): Uint8Array[] {
  return ranges.map((r) =>
    foldFromRight(
      rangeCoordinates(r.start, r.end).map(({ level, index }) => {
        const hash = lookup(level, index);
        if (!hash) throw new Error(`merkle: subtree ${level}/${index} is missing`);
        return hash;
      }),
    ),
  );
}

function assertTreeArguments(condition: boolean, message: string): void {
  if (!condition) throw new RangeError(message);
}

/** The stored nodes an inclusion proof of leaf `index` in a tree of `size` leaves needs. */
export function inclusionProofCoordinates(index: number, size: number): NodeCoordinate[] {
  assertTreeArguments(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size, `no leaf ${index} in a tree of size ${size}`);
  return coordinatesOf(inclusionRanges(index, 0, size));
}

/** RFC 9162 2.1.3.1 audit path of leaf `index` in the tree of the first `size` leaves. */
export function inclusionProof(index: number, size: number, lookup: NodeLookup): Uint8Array[] {
  assertTreeArguments(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size, `no leaf ${index} in a tree of size ${size}`);
  return hashRanges(inclusionRanges(index, 0, size), lookup);
}

/** The stored nodes a consistency proof from `from` to `to` leaves needs. */
export function consistencyProofCoordinates(from: number, to: number): NodeCoordinate[] {
  assertTreeArguments(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from > 0 && from <= to, `no consistency proof from ${from} to ${to}`);
  return coordinatesOf(consistencyRanges(from, 0, to, true));
}

/** RFC 9162 2.1.4.1 consistency proof between the trees of the first `from` and `to` leaves. */
export function consistencyProof(from: number, to: number, lookup: NodeLookup): Uint8Array[] {
  assertTreeArguments(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from > 0 && from <= to, `no consistency proof from ${from} to ${to}`);
  return hashRanges(consistencyRanges(from, 0, to, true), lookup);
}

/** The stored nodes the root of the tree of the first `size` leaves needs. */
export function rootCoordinates(size: number): NodeCoordinate[] {
  return rangeCoordinates(0, size);
}

/** The root of the tree of the first `size` leaves, any size up to the current one. */
export function rootAt(size: number, lookup: NodeLookup): Uint8Array {
  if (size === 0) return EMPTY_ROOT;
  return hashRanges([{ start: 0, end: size }], lookup)[0]!;
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === HASH_SIZE;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** RFC 9162 2.1.3.2, with the reason of a failure. Never throws on malformed input. */
export function checkInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): VerifyResult {
  if (!isHash(leaf) || !isHash(root)) return { ok: false, reason: 'a hash is not 32 bytes' };
  if (!Array.isArray(proof) || !proof.every(isHash)) return { ok: false, reason: 'a proof hash is not 32 bytes' };
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || size < 1) return { ok: false, reason: 'index or size is not a valid tree position' };
  if (index >= size) return { ok: false, reason: `index ${index} is not below tree size ${size}` };
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return { ok: false, reason: 'the proof is longer than the tree is deep' };
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, reason: 'the proof is shorter than the tree is deep' };
  return equal(r, root) ? { ok: true } : { ok: false, reason: 'the computed root differs from the expected root' };
}

export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  return checkInclusion(leaf, index, size, proof, root).ok;
}

/** RFC 9162 2.1.4.2, with the reason of a failure. Never throws on malformed input. */
export function checkConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): VerifyResult {
  if (!isHash(root1) || !isHash(root2)) return { ok: false, reason: 'a root hash is not 32 bytes' };
  if (!Array.isArray(proof) || !proof.every(isHash)) return { ok: false, reason: 'a proof hash is not 32 bytes' };
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2)) return { ok: false, reason: 'a tree size is not an integer' };
  if (size1 < 1) return { ok: false, reason: 'there is no consistency proof from an empty tree' };
  if (size1 > size2) return { ok: false, reason: `tree size ${size1} is larger than ${size2}` };
  if (size1 === size2) {
    if (proof.length > 0) return { ok: false, reason: 'a proof between equal sizes must be empty' };
    return equal(root1, root2) ? { ok: true } : { ok: false, reason: 'the roots of equal sizes differ' };
  }
  if (proof.length === 0) return { ok: false, reason: 'the proof is empty' };
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return { ok: false, reason: 'the proof is longer than the trees are deep' };
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, reason: 'the proof is shorter than the trees are deep' };
  if (!equal(fr, root1)) return { ok: false, reason: 'the proof does not lead to the first root' };
  if (!equal(sr, root2)) return { ok: false, reason: 'the proof does not lead to the second root' };
  return { ok: true };
}

export function verifyConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): boolean {
  return checkConsistency(size1, size2, proof, root1, root2).ok;
}

/** A whole log in memory on the same functions: for tests, benchmarks and the offline verifier. */
export class InMemoryMerkleLog {
  private readonly nodes = new Map<string, Uint8Array>();
  private frontier: SubtreeNode[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  readonly lookup: NodeLookup = (level, index) => this.nodes.get(`${level}/${index}`);

  append(leafHashes: Uint8Array[]): Uint8Array {
    const result = appendLeaves(this.count, this.frontier, leafHashes);
    for (const node of result.newNodes) this.nodes.set(`${node.level}/${node.index}`, node.hash);
    this.frontier = result.frontier;
    this.count = result.size;
    return result.root;
  }

  root(size = this.count): Uint8Array {
    return rootAt(size, this.lookup);
  }

  inclusionProof(index: number, size = this.count): Uint8Array[] {
    return inclusionProof(index, size, this.lookup);
  }

  consistencyProof(from: number, to = this.count): Uint8Array[] {
    return consistencyProof(from, to, this.lookup);
  }
}

/*
 * Ranges: a run of consecutive leaves tied to a tree by the complete subtrees on either side of it
 * (a "compact range", as in transparency-dev/merkle). This is what an export carries instead of
 * one inclusion proof per entry: O(log n) hashes for any number of entries.
 */

/** The subtrees left of leaves [start, end) and right of them, up to a tree of `size` leaves. */
export interface RangeProof {
  left: Uint8Array[];
  right: Uint8Array[];
}

function assertRange(start: number, end: number, size: number): void {
  assertTreeArguments(
    Number.isSafeInteger(start) && Number.isSafeInteger(end) && Number.isSafeInteger(size) && start >= 0 && start < end && end <= size,
    `no range [${start}, ${end}) in a tree of size ${size}`,
  );
}

/** The stored nodes a range proof needs: both sides are complete subtrees, read as they are. */
export function rangeProofCoordinates(start: number, end: number, size: number): { left: NodeCoordinate[]; right: NodeCoordinate[] } {
  assertRange(start, end, size);
  return { left: rangeCoordinates(0, start), right: rangeCoordinates(end, size) };
}

export function rangeProof(start: number, end: number, size: number, lookup: NodeLookup): RangeProof {
  const { left, right } = rangeProofCoordinates(start, end, size);
  const read = ({ level, index }: NodeCoordinate) => {
    const hash = lookup(level, index);
    if (!hash) throw new Error(`merkle: subtree ${level}/${index} is missing`);
    return hash;
  };
  return { left: left.map(read), right: right.map(read) };
}

/*
 * Hashing for hot loops (the offline verifier hashes millions of leaves): one native one-shot call
 * over a reused buffer costs about half of a streaming hash object; and taking the digest as a
 * 'binary' (latin1) string, one character per byte exactly, then copying it into a pooled buffer
 * costs a third of asking for a buffer, which allocates memory of its own every time. Same bytes,
 * same digests as leafHash and nodeHash.
 */
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeInput[0] = 0x01;

function fastNodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return Buffer.from(hash('sha256', nodeInput, 'binary'), 'latin1');
}

/** A leaf hasher that reuses one buffer: for hashing many leaves in a row on one thread. */
export function createLeafHasher(): (leaf: Uint8Array) => Buffer {
  let input = Buffer.alloc(4096);
  return (leaf) => {
    if (leaf.length + 1 > input.length) input = Buffer.alloc(2 * (leaf.length + 1));
    input[0] = 0x00;
    input.set(leaf, 1);
    return Buffer.from(hash('sha256', input.subarray(0, leaf.length + 1), 'binary'), 'latin1');
  };
}

/**
 * The compact range of leaves [begin, end): the aligned complete subtrees covering them, left to
 * right, exactly the nodes rangeCoordinates(begin, end) names. It takes leaves and aligned
 * subtrees one at a time, merging siblings as it goes, so any number of leaves streams through in
 * O(log n) memory. Ranges from leaf 0 (a tree's frontier plus what follows) also give the root;
 * ranges of consecutive leaves can be built apart (on several threads) and appended in order.
 */
export class CompactRange {
  private constructor(
    readonly begin: number,
    private size: number,
    private readonly stack: SubtreeNode[],
  ) {}

  /** From the complete subtrees of a tree of `size` leaves (its frontier, largest first). */
  static ofPrefix(size: number, frontier: readonly Uint8Array[]): CompactRange {
    assertTreeArguments(Number.isSafeInteger(size) && size >= 0, `no tree of size ${size}`);
    const coordinates = rangeCoordinates(0, size);
    if (frontier.length !== coordinates.length) {
      throw new RangeError(`a tree of size ${size} has ${coordinates.length} frontier subtree(s), ${frontier.length} given`);
    }
    if (!frontier.every(isHash)) throw new RangeError('a frontier hash is not 32 bytes');
    return new CompactRange(0, size, coordinates.map((c, i) => ({ ...c, hash: frontier[i]! })));
  }

  /** The empty range at leaf `begin`, to append leaves from there. */
  static startingAt(begin: number): CompactRange {
    assertTreeArguments(Number.isSafeInteger(begin) && begin >= 0, `no leaf ${begin}`);
    return new CompactRange(begin, begin, []);
  }

  /** The index of the next leaf. */
  get end(): number {
    return this.size;
  }

  appendLeafHash(leaf: Uint8Array): void {
    this.appendSubtree(0, leaf);
  }

  /** Appends the complete subtree of 2^level leaves that starts at `end` (it must be aligned there). */
  appendSubtree(level: number, subtree: Uint8Array): void {
    const width = 2 ** level;
    if (!isHash(subtree)) throw new RangeError('a subtree hash is not 32 bytes');
    if (!Number.isSafeInteger(width) || level < 0 || this.size % width !== 0 || !Number.isSafeInteger(this.size + width)) {
      throw new RangeError(`a subtree of level ${level} cannot start at leaf ${this.size}`);
    }
    let node: SubtreeNode = { level, index: this.size / width, hash: subtree };
    // An odd index is a right child: its left sibling, if inside the range, is on top of the stack.
    for (let top = this.stack[this.stack.length - 1]; top && top.level === node.level && node.index % 2 === 1; top = this.stack[this.stack.length - 1]) {
      this.stack.pop();
      node = { level: node.level + 1, index: top.index / 2, hash: fastNodeHash(top.hash, node.hash) };
    }
    this.stack.push(node);
    this.size += width;
  }

  /** The range's complete subtrees, left to right. */
  nodes(): SubtreeNode[] {
    return [...this.stack];
  }

  /** The RFC 6962 root of the tree of the first `end` leaves (a range from leaf 0 only). */
  root(): Uint8Array {
    if (this.begin !== 0) throw new RangeError(`the range starts at leaf ${this.begin}: only a range from leaf 0 has a root`);
    if (this.stack.length === 0) return EMPTY_ROOT;
    let root = this.stack[this.stack.length - 1]!.hash;
    for (let i = this.stack.length - 2; i >= 0; i--) root = fastNodeHash(this.stack[i]!.hash, root);
    return root;
  }
}

/**
 * Checks that `leaves` are the leaf hashes at [start, start + leaves.length) of the tree of `size`
 * leaves whose root is `root`, given the range proof. Never throws on malformed input.
 */
export function checkRange(start: number, leaves: readonly Uint8Array[], size: number, proof: RangeProof, root: Uint8Array): VerifyResult {
  if (!isHash(root)) return { ok: false, reason: 'the root hash is not 32 bytes' };
  if (!Array.isArray(leaves) || leaves.length === 0) return { ok: false, reason: 'the range has no leaves' };
  if (!leaves.every(isHash)) return { ok: false, reason: 'a leaf hash is not 32 bytes' };
  if (!proof || !Array.isArray(proof.left) || !Array.isArray(proof.right)) return { ok: false, reason: 'the range proof is not a left and a right list' };
  if (!proof.left.every(isHash) || !proof.right.every(isHash)) return { ok: false, reason: 'a proof hash is not 32 bytes' };
  const end = start + leaves.length;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || start < 0 || end > size) {
    return { ok: false, reason: `no range [${start}, ${end}) in a tree of size ${size}` };
  }
  const right = rangeCoordinates(end, size);
  const leftCount = rangeCoordinates(0, start).length;
  if (proof.left.length !== leftCount) return { ok: false, reason: `the proof has ${proof.left.length} hash(es) left of the range, the tree needs ${leftCount}` };
  if (proof.right.length !== right.length) return { ok: false, reason: `the proof has ${proof.right.length} hash(es) right of the range, the tree needs ${right.length}` };
  const range = CompactRange.ofPrefix(start, proof.left);
  for (const leaf of leaves) range.appendLeafHash(leaf);
  right.forEach(({ level }, i) => range.appendSubtree(level, proof.right[i]!));
  return equal(range.root(), root) ? { ok: true } : { ok: false, reason: 'the leaves with the range proof do not hash to the root' };
}
