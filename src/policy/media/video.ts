import { type Box, ByteCuts, type ByteRange, Mp4FormatError, type Patch, parseBoxes, payloadStart, printableType, writeWithout } from './mp4-boxes.js';

/**
 * Video minimisation without transcoding: the MP4/QuickTime box tree is rewritten so that only
 * what playback needs stays. Each level keeps an allow-list of boxes, so user data (udta with
 * ©xyz location, XMP_, camera make and model), meta (QuickTime keys such as
 * com.apple.quicktime.location.ISO6709), uuid boxes (XMP and vendor blobs) and free space go,
 * as do tracks other than video and sound (timed metadata, GPS telemetry, subtitles, timecode)
 * with their sample data, and any media data no kept track reads. Capture times in the movie,
 * track and media headers are zeroed. Removing bytes moves the media data, so every chunk offset
 * is rewritten.
 */

export type VideoOutcome =
  | { ok: true; bytes: Buffer; width?: number; height?: number; removed: string[] }
  | { ok: false; reason: 'media.unreadable'; detail: string };

/** The boxes kept inside each container; the keys are the containers the parser enters. */
const KEPT_INSIDE: Readonly<Record<string, ReadonlySet<string>>> = {
  moov: new Set(['mvhd', 'iods', 'trak']),
  trak: new Set(['tkhd', 'tref', 'trgr', 'edts', 'mdia', 'tapt']),
  edts: new Set(['elst']),
  mdia: new Set(['mdhd', 'hdlr', 'elng', 'minf']),
  minf: new Set(['vmhd', 'smhd', 'hmhd', 'nmhd', 'sthd', 'gmhd', 'hdlr', 'dinf', 'stbl']),
  dinf: new Set(['dref']),
  stbl: new Set(['stsd', 'stts', 'ctts', 'cslg', 'stss', 'stps', 'stsh', 'sdtp', 'stsc', 'stsz', 'stz2', 'stco', 'co64', 'padb', 'sbgp', 'sgpd', 'subs', 'saiz']),
};
const KEPT_AT_TOP = new Set(['ftyp', 'moov', 'mdat']);
const CONTAINERS = new Set(Object.keys(KEPT_INSIDE));

/** Boxes whose presence means sample data is addressed in ways this rewriter does not adjust. */
const REFUSED: ReadonlyMap<string, string> = new Map([
  ['moof', 'fragmented MP4 is not supported'],
  ['mvex', 'fragmented MP4 is not supported'],
  ['mfra', 'fragmented MP4 is not supported'],
  ['styp', 'segmented MP4 is not supported'],
  ['sidx', 'segmented MP4 is not supported'],
  ['ssix', 'segmented MP4 is not supported'],
  ['saio', 'sample auxiliary information offsets (saio) are not supported'],
]);

const KEPT_HANDLERS = new Set(['vide', 'soun']);
const XMP_UUID = 'be7acfcb97a942e89c71999491e3be7c';
/** The record of what was removed stays short even for a hostile file; everything goes regardless. */
const MAX_RECORDED_REMOVALS = 64;

interface Track {
  box: Box;
  handler: string;
  tkhd: Box;
  mdhd: Box;
  chunkOffsets: Box;
  chunks: ByteRange[];
}

interface Rewrite {
  cuts: ByteRange[];
  patches: Patch[];
  removed: Set<string>;
}

function childrenOfType(parent: Box, type: string): Box[] {
  return parent.children.filter((box) => box.type === type);
}

function onlyChild(parent: Box, type: string): Box {
  const found = childrenOfType(parent, type);
  if (found.length !== 1) throw new Mp4FormatError(`'${parent.type}' at offset ${parent.start} has ${found.length} '${type}' boxes, not one`);
  return found[0]!;
}

/** The payload of a box, after checking it holds at least `minLength` bytes. */
function payload(file: Buffer, box: Box, minLength: number): Buffer {
  const bytes = file.subarray(payloadStart(box), box.end);
  if (bytes.length < minLength) throw new Mp4FormatError(`'${printableType(box.type)}' at offset ${box.start} is too short`);
  return bytes;
}

/** Child type names of a removed udta, for the record of what went; unparseable user data is still removed whole. */
function userDataItems(file: Buffer, udta: Box): string[] {
  try {
    return parseBoxes(file, new Set(), { start: payloadStart(udta), end: udta.end }).map((item) => printableType(item.type));
  } catch {
    return [];
  }
}

function recordRemoval(rewrite: Rewrite, name: string): void {
  if (rewrite.removed.size < MAX_RECORDED_REMOVALS) rewrite.removed.add(name);
}

function removeBox(file: Buffer, box: Box, rewrite: Rewrite): void {
  rewrite.cuts.push({ start: box.start, end: box.end });
  if (box.type === 'uuid') recordRemoval(rewrite, box.userType === XMP_UUID ? 'xmp' : 'uuid');
  else recordRemoval(rewrite, printableType(box.type));
  if (box.type === 'udta') for (const item of userDataItems(file, box)) recordRemoval(rewrite, item);
}

function sweep(file: Buffer, boxes: readonly Box[], kept: ReadonlySet<string>, rewrite: Rewrite): void {
  for (const box of boxes) {
    const refusal = REFUSED.get(box.type);
    if (refusal) throw new Mp4FormatError(refusal);
    if (!kept.has(box.type)) removeBox(file, box, rewrite);
    else if (box.children.length > 0) sweep(file, box.children, KEPT_INSIDE[box.type]!, rewrite);
  }
}

function readChunkOffsets(file: Buffer, box: Box): number[] {
  const wide = box.type === 'co64';
  const entrySize = wide ? 8 : 4;
  const bytes = payload(file, box, 8);
  const count = bytes.readUInt32BE(4);
  if (8 + count * entrySize > bytes.length) throw new Mp4FormatError(`'${box.type}' at offset ${box.start} lists more chunks than it holds`);
  return Array.from({ length: count }, (_, i) => {
    if (!wide) return bytes.readUInt32BE(8 + i * 4);
    const offset = bytes.readBigUInt64BE(8 + i * 8);
    if (offset > BigInt(file.length)) throw new Mp4FormatError(`'co64' at offset ${box.start} points past the end of the file`);
    return Number(offset);
  });
}

/** Samples in each chunk, from the runs of the sample-to-chunk box. */
function readSamplesPerChunk(file: Buffer, stsc: Box, chunkCount: number): number[] {
  const bytes = payload(file, stsc, 8);
  const runCount = bytes.readUInt32BE(4);
  if (8 + runCount * 12 > bytes.length) throw new Mp4FormatError(`'stsc' at offset ${stsc.start} lists more entries than it holds`);
  const runs = Array.from({ length: runCount }, (_, i) => ({ firstChunk: bytes.readUInt32BE(8 + i * 12), samples: bytes.readUInt32BE(12 + i * 12) }));
  // The first run starts at chunk 1 and each run lasts until the next one starts, so every chunk is covered.
  if (chunkCount > 0 && runs[0]?.firstChunk !== 1) throw new Mp4FormatError(`'stsc' at offset ${stsc.start} does not start at the first chunk`);
  if (runs.some((run, i) => i > 0 && run.firstChunk <= runs[i - 1]!.firstChunk)) throw new Mp4FormatError(`'stsc' at offset ${stsc.start} has runs out of order`);
  const perChunk: number[] = [];
  runs.forEach((run, i) => {
    const end = Math.min(runs[i + 1]?.firstChunk ?? Infinity, chunkCount + 1);
    for (let chunk = run.firstChunk; chunk < end; chunk++) perChunk.push(run.samples);
  });
  return perChunk;
}

/** Sample sizes: one size for all samples, or one per sample (stsz, or compact stz2). */
function readSampleSizes(file: Buffer, stbl: Box): { count: number; sizeOfRun: (first: number, count: number) => number } {
  const stsz = childrenOfType(stbl, 'stsz');
  const stz2 = childrenOfType(stbl, 'stz2');
  if (stsz.length + stz2.length !== 1) throw new Mp4FormatError(`'stbl' at offset ${stbl.start} needs one sample size box`);
  let sizes: number[];
  if (stsz.length === 1) {
    const bytes = payload(file, stsz[0]!, 12);
    const constant = bytes.readUInt32BE(4);
    const count = bytes.readUInt32BE(8);
    if (constant !== 0) return { count, sizeOfRun: (_, run) => constant * run };
    if (12 + count * 4 > bytes.length) throw new Mp4FormatError(`'stsz' at offset ${stsz[0]!.start} lists more samples than it holds`);
    sizes = Array.from({ length: count }, (_, i) => bytes.readUInt32BE(12 + i * 4));
  } else {
    const bytes = payload(file, stz2[0]!, 12);
    const fieldSize = bytes[7]!;
    const count = bytes.readUInt32BE(8);
    if (![4, 8, 16].includes(fieldSize) || 12 + Math.ceil((count * fieldSize) / 8) > bytes.length) {
      throw new Mp4FormatError(`'stz2' at offset ${stz2[0]!.start} is malformed`);
    }
    sizes = Array.from({ length: count }, (_, i) => {
      if (fieldSize === 16) return bytes.readUInt16BE(12 + i * 2);
      if (fieldSize === 8) return bytes[12 + i]!;
      const pair = bytes[12 + (i >> 1)]!;
      return i % 2 === 0 ? pair >> 4 : pair & 0x0f;
    });
  }
  const sizeOfRun = (first: number, run: number) => {
    let total = 0;
    for (let i = first; i < first + run; i++) total += sizes[i]!;
    return total;
  };
  return { count: sizes.length, sizeOfRun };
}

/** The byte range of every chunk of a track, from its sample tables. */
function readChunks(file: Buffer, stbl: Box, chunkOffsets: Box): ByteRange[] {
  const offsets = readChunkOffsets(file, chunkOffsets);
  const samplesPerChunk = readSamplesPerChunk(file, onlyChild(stbl, 'stsc'), offsets.length);
  const sizes = readSampleSizes(file, stbl);
  let sample = 0;
  return offsets.map((start, i) => {
    const samples = samplesPerChunk[i]!;
    if (sample + samples > sizes.count) throw new Mp4FormatError(`the sample tables of the track in 'stbl' at offset ${stbl.start} disagree`);
    const range = { start, end: start + sizes.sizeOfRun(sample, samples) };
    sample += samples;
    return range;
  });
}

function readTrack(file: Buffer, trak: Box): Track {
  const mdia = onlyChild(trak, 'mdia');
  const handler = payload(file, onlyChild(mdia, 'hdlr'), 12).toString('latin1', 8, 12);
  const stbl = onlyChild(onlyChild(mdia, 'minf'), 'stbl');
  const offsetBoxes = [...childrenOfType(stbl, 'stco'), ...childrenOfType(stbl, 'co64')];
  if (offsetBoxes.length !== 1) throw new Mp4FormatError(`'stbl' at offset ${stbl.start} needs one chunk offset box`);
  const chunkOffsets = offsetBoxes[0]!;
  return { box: trak, handler, tkhd: onlyChild(trak, 'tkhd'), mdhd: onlyChild(mdia, 'mdhd'), chunkOffsets, chunks: readChunks(file, stbl, chunkOffsets) };
}

/** Zeroes the creation and modification times of an mvhd, tkhd or mdhd (version 0: 32-bit, version 1: 64-bit). */
function zeroCaptureTimes(file: Buffer, header: Box, rewrite: Rewrite): void {
  const timesLength = payload(file, header, 1)[0] === 1 ? 16 : 8;
  const times = payload(file, header, 4 + timesLength).subarray(4, 4 + timesLength);
  if (times.every((byte) => byte === 0)) return;
  rewrite.patches.push({ at: payloadStart(header) + 4, bytes: new Uint8Array(timesLength) });
  recordRemoval(rewrite, 'creation_time');
}

/** Display size from a video track header: 16.16 fixed-point, swapped when the matrix turns the picture a quarter. */
function displaySize(file: Buffer, tkhd: Box): { width: number; height: number } {
  const version1 = payload(file, tkhd, 1)[0] === 1;
  const matrixAt = version1 ? 52 : 40;
  const bytes = payload(file, tkhd, matrixAt + 44);
  const width = Math.round(bytes.readUInt32BE(matrixAt + 36) / 0x10000);
  const height = Math.round(bytes.readUInt32BE(matrixAt + 40) / 0x10000);
  const quarterTurn = bytes.readInt32BE(matrixAt) === 0 && bytes.readInt32BE(matrixAt + 4) !== 0;
  return quarterTurn ? { width: height, height: width } : { width, height };
}

/** The index of the first of the sorted ranges for which `after` holds (it holds for all that follow); their length if none. */
function firstWhere(sorted: readonly ByteRange[], after: (range: ByteRange) => boolean): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (after(sorted[mid]!)) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** Whether a range lies inside one of the sorted, disjoint ranges. */
function insideOneOf(range: ByteRange, sorted: readonly ByteRange[]): boolean {
  const candidate = sorted[firstWhere(sorted, (r) => r.start > range.start) - 1];
  return candidate !== undefined && range.end <= candidate.end;
}

/** The parts of the media data that none of the read ranges (sorted, disjoint) covers. */
function unreadRanges(mediaData: readonly ByteRange[], read: readonly ByteRange[]): ByteRange[] {
  const unread: ByteRange[] = [];
  for (const data of mediaData) {
    let at = data.start;
    // From the first read range that ends inside or after this media data.
    for (let i = firstWhere(read, (r) => r.end > data.start); i < read.length && read[i]!.start < data.end; i++) {
      if (read[i]!.start > at) unread.push({ start: at, end: read[i]!.start });
      at = Math.max(at, read[i]!.end);
    }
    if (at < data.end) unread.push({ start: at, end: data.end });
  }
  return unread;
}

function chunkOffsetsPatch(track: Track, cuts: ByteCuts): Patch {
  const wide = track.chunkOffsets.type === 'co64';
  const entries = Buffer.alloc(track.chunks.length * (wide ? 8 : 4));
  track.chunks.forEach((chunk, i) => {
    const offset = cuts.newOffset(chunk.start);
    if (wide) entries.writeBigUInt64BE(BigInt(offset), i * 8);
    else entries.writeUInt32BE(offset, i * 4);
  });
  return { at: payloadStart(track.chunkOffsets) + 8, bytes: entries };
}

function rewriteMovie(file: Buffer): { bytes: Buffer; width?: number; height?: number; removed: string[] } {
  const top = parseBoxes(file, CONTAINERS);
  const rewrite: Rewrite = { cuts: [], patches: [], removed: new Set() };
  sweep(file, top, KEPT_AT_TOP, rewrite);

  const moovs = top.filter((box) => box.type === 'moov');
  if (moovs.length !== 1) throw new Mp4FormatError(`the file has ${moovs.length} 'moov' boxes, not one`);
  const moov = moovs[0]!;
  const mediaData = top.filter((box) => box.type === 'mdat').map((mdat) => ({ start: payloadStart(mdat), end: mdat.end }));
  const tracks = childrenOfType(moov, 'trak').map((trak) => readTrack(file, trak));
  const kept = tracks.filter((track) => KEPT_HANDLERS.has(track.handler));
  const dropped = tracks.filter((track) => !KEPT_HANDLERS.has(track.handler));
  const video = kept.find((track) => track.handler === 'vide');
  if (!video) throw new Mp4FormatError('the file has no video track');

  for (const track of tracks) {
    if (track.chunks.some((chunk) => !insideOneOf(chunk, mediaData))) {
      throw new Mp4FormatError(`a chunk of a '${printableType(track.handler)}' track lies outside the media data`);
    }
  }
  for (const track of dropped) {
    rewrite.cuts.push({ start: track.box.start, end: track.box.end });
    recordRemoval(rewrite, `trak:${printableType(track.handler)}`);
  }
  // Sorted and merged once: every lookup below is a binary search (a file may hold a million chunks).
  const keptData = new ByteCuts(kept.flatMap((track) => track.chunks));
  if (dropped.some((track) => track.chunks.some((chunk) => keptData.removesAnyOf(chunk)))) throw new Mp4FormatError('a kept track shares sample data with a removed one');
  // What no kept track reads goes too: the removed tracks' samples, slack, and data that only a
  // removed box pointed at (the items of a meta box, stored in mdat).
  const removedSamples = new ByteCuts(dropped.flatMap((track) => track.chunks));
  for (const unread of unreadRanges(mediaData, keptData.ranges)) {
    rewrite.cuts.push(unread);
    if (removedSamples.removedBefore(unread.end) - removedSamples.removedBefore(unread.start) < unread.end - unread.start) recordRemoval(rewrite, 'mdat:unreferenced');
  }
  const cuts = new ByteCuts(rewrite.cuts);
  for (const track of kept) {
    rewrite.patches.push(chunkOffsetsPatch(track, cuts));
    zeroCaptureTimes(file, track.tkhd, rewrite);
    zeroCaptureTimes(file, track.mdhd, rewrite);
  }
  zeroCaptureTimes(file, onlyChild(moov, 'mvhd'), rewrite);

  return { bytes: writeWithout(file, top, cuts, rewrite.patches), ...displaySize(file, video.tkhd), removed: [...rewrite.removed] };
}

/** Rewrites an MP4 or QuickTime file without its metadata. Never throws: anything unparseable is media.unreadable. */
export function minimiseVideo(bytes: Buffer): VideoOutcome {
  try {
    return { ok: true, ...rewriteMovie(bytes) };
  } catch (error) {
    const detail = error instanceof Mp4FormatError ? error.message : 'the video could not be parsed';
    return { ok: false, reason: 'media.unreadable', detail };
  }
}
