/**
 * The box (atom) tree of ISO base media files (ISO/IEC 14496-12: MP4, and QuickTime, which it
 * grew from): a parser that checks every size against its parent's bounds, and a writer that
 * copies a file without chosen byte ranges, rewriting the size of every box around them. Both are
 * bounded in depth and box count and fail closed with Mp4FormatError on anything else.
 */

export const MAX_BOX_DEPTH = 16;
export const MAX_BOX_COUNT = 10_000;

export class Mp4FormatError extends Error {
  override readonly name = 'Mp4FormatError';
}

export interface ByteRange {
  start: number;
  end: number;
}

export interface Box extends ByteRange {
  type: string;
  /** 8, or 16 with a 64-bit largesize; a uuid box adds its 16-byte extended type. */
  headerSize: number;
  /** Where the size is stored: the 32-bit field, the 64-bit largesize, or nowhere (0: to the end of the file). */
  sizeField: 'compact' | 'large' | 'to-end';
  /** A uuid box's extended type, as 32 lowercase hex digits. */
  userType?: string;
  /** The boxes inside a container the parser was told to enter; empty for any other box. */
  children: Box[];
}

/** Replacement bytes for a range of the original file, of the same length. */
export interface Patch {
  at: number;
  bytes: Uint8Array;
}

export function payloadStart(box: Box): number {
  return box.start + box.headerSize;
}

/** A box type as text: printable ASCII and the © of QuickTime user data as is, any other byte in hex. */
export function printableType(type: string): string {
  return [...type].map((c) => (/^[\x20-\x7e©]$/.test(c) ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)).join('');
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

interface ParseState {
  file: Buffer;
  containers: ReadonlySet<string>;
  boxCount: number;
}

function parseLevel(state: ParseState, range: ByteRange, depth: number): Box[] {
  if (depth > MAX_BOX_DEPTH) throw new Mp4FormatError(`boxes are nested more than ${MAX_BOX_DEPTH} deep`);
  const { file } = state;
  const boxes: Box[] = [];
  let at = range.start;
  while (at < range.end) {
    state.boxCount += 1;
    if (state.boxCount > MAX_BOX_COUNT) throw new Mp4FormatError(`the file has more than ${MAX_BOX_COUNT} boxes`);
    const room = range.end - at;
    if (room < 8) throw new Mp4FormatError(`${room} stray bytes at offset ${at}`);
    const declared = file.readUInt32BE(at);
    const type = file.toString('latin1', at + 4, at + 8);
    const name = printableType(type);
    let size: number;
    let headerSize = 8;
    let sizeField: Box['sizeField'] = 'compact';
    if (declared === 1) {
      if (room < 16) throw new Mp4FormatError(`box '${name}' at offset ${at} is cut short in its header`);
      const largeSize = file.readBigUInt64BE(at + 8);
      if (largeSize > BigInt(room)) throw new Mp4FormatError(`box '${name}' at offset ${at} ends past its parent`);
      size = Number(largeSize);
      headerSize = 16;
      sizeField = 'large';
    } else if (declared === 0) {
      if (depth > 0 || range.end !== file.length) throw new Mp4FormatError(`box '${name}' at offset ${at} has size 0 below the top level`);
      size = room;
      sizeField = 'to-end';
    } else {
      size = declared;
    }
    if (type === 'uuid') headerSize += 16;
    if (size < headerSize) throw new Mp4FormatError(`box '${name}' at offset ${at} is smaller than its header`);
    if (size > room) throw new Mp4FormatError(`box '${name}' at offset ${at} ends past its parent`);
    const box: Box = { type, start: at, end: at + size, headerSize, sizeField, children: [] };
    if (type === 'uuid') box.userType = file.toString('hex', at + headerSize - 16, at + headerSize);
    if (state.containers.has(type)) box.children = parseLevel(state, { start: payloadStart(box), end: box.end }, depth + 1);
    boxes.push(box);
    at = box.end;
  }
  return boxes;
}

/**
 * Parses the boxes of `range` (the whole file by default), entering the named container types.
 * Only a top-level box may extend to the end of the file (size 0).
 */
export function parseBoxes(bytes: Uint8Array, containers: ReadonlySet<string>, range: ByteRange = { start: 0, end: bytes.length }): Box[] {
  if (range.start < 0 || range.start > range.end || range.end > bytes.length) throw new Mp4FormatError('the range to parse is outside the file');
  return parseLevel({ file: asBuffer(bytes), containers, boxCount: 0 }, range, 0);
}

/** Byte ranges to remove from a file, sorted and merged, and where the bytes that stay will land. */
export class ByteCuts {
  readonly ranges: readonly ByteRange[];
  /** removedThrough[i]: bytes removed by ranges[0..i]. */
  private readonly removedThrough: number[];

  constructor(ranges: Iterable<ByteRange>) {
    const sorted = [...ranges].filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
    const merged: ByteRange[] = [];
    for (const range of sorted) {
      const last = merged[merged.length - 1];
      if (last && range.start <= last.end) last.end = Math.max(last.end, range.end);
      else merged.push({ ...range });
    }
    this.ranges = merged;
    let total = 0;
    this.removedThrough = merged.map((r) => (total += r.end - r.start));
  }

  /** How many bytes before `offset` are removed. */
  removedBefore(offset: number): number {
    let low = 0;
    let high = this.ranges.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.ranges[mid]!.start < offset) low = mid + 1;
      else high = mid;
    }
    if (low === 0) return 0;
    const last = this.ranges[low - 1]!;
    return this.removedThrough[low - 1]! - Math.max(0, last.end - offset);
  }

  removesAnyOf(range: ByteRange): boolean {
    return this.removedBefore(range.end) > this.removedBefore(range.start);
  }

  /** Where a byte that is not removed lands in the output. */
  newOffset(offset: number): number {
    return offset - this.removedBefore(offset);
  }
}

function rewriteSizes(output: Buffer, boxes: readonly Box[], cuts: ByteCuts): void {
  for (const box of boxes) {
    const removed = cuts.removedBefore(box.end) - cuts.removedBefore(box.start);
    if (removed === 0 || removed === box.end - box.start) continue;
    if (cuts.removesAnyOf({ start: box.start, end: payloadStart(box) })) {
      throw new Mp4FormatError(`a cut splits the header of box '${printableType(box.type)}' at offset ${box.start}`);
    }
    const size = box.end - box.start - removed;
    if (box.sizeField === 'compact') output.writeUInt32BE(size, box.start);
    else if (box.sizeField === 'large') output.writeBigUInt64BE(BigInt(size), box.start + 8);
    rewriteSizes(output, box.children, cuts);
  }
}

/**
 * Copies `bytes` with the patches applied and the cuts left out, shrinking the size of every box
 * that held removed bytes. A cut must take whole boxes or lie inside a box's payload; patches are
 * in the original file's offsets.
 */
export function writeWithout(bytes: Uint8Array, boxes: readonly Box[], cuts: ByteCuts, patches: readonly Patch[]): Buffer {
  const output = Buffer.from(bytes);
  const lastCut = cuts.ranges[cuts.ranges.length - 1];
  if (lastCut && (cuts.ranges[0]!.start < 0 || lastCut.end > output.length)) throw new Mp4FormatError('a cut lies outside the file');
  for (const patch of patches) {
    if (patch.at < 0 || patch.at + patch.bytes.length > output.length) throw new Mp4FormatError('a patch lies outside the file');
    output.set(patch.bytes, patch.at);
  }
  rewriteSizes(output, boxes, cuts);
  const kept: Buffer[] = [];
  let at = 0;
  for (const cut of cuts.ranges) {
    kept.push(output.subarray(at, cut.start));
    at = cut.end;
  }
  kept.push(output.subarray(at));
  return Buffer.concat(kept);
}
