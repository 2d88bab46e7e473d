import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { type MediaRules, type MinimisedMedia, minimiseMedia } from '../../../src/policy/media/index.js';
import { ByteCuts, MAX_BOX_COUNT, Mp4FormatError, parseBoxes, writeWithout } from '../../../src/policy/media/mp4-boxes.js';

const RULES: MediaRules = {
  photos: { allow: true, types: ['jpeg', 'png', 'heic', 'webp'], maxBytes: 5_000_000, maxPixels: 40_000_000, maxDimension: 10_000 },
  videos: { allow: true, types: ['mp4', 'quicktime'], maxBytes: 16_000_000 },
};

// ---- A tiny box writer: just enough MP4/QuickTime to carry tracks, sample tables and metadata. ----

const LOCATION = '+52.0900+005.1200/';
const XMP_UUID = Buffer.from('be7acfcb97a942e89c71999491e3be7c', 'hex');
/** Text that only metadata carries: none of it may be left in a rewritten file. */
const SECRETS = [LOCATION, 'com.apple.quicktime.location.ISO6709', 'Alice Example', 'AcmeCam', '<x:xmpmeta'];

function u32(...values: number[]): Buffer {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => bytes.writeInt32BE(value | 0, i * 4));
  return bytes;
}

function u64(...values: number[]): Buffer {
  const bytes = Buffer.alloc(values.length * 8);
  values.forEach((value, i) => bytes.writeBigUInt64BE(BigInt(value), i * 8));
  return bytes;
}

function box(type: string, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(8 + body.length), Buffer.from(type, 'latin1'), body]);
}

/** A box with a 64-bit largesize. */
function largeBox(type: string, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(1), Buffer.from(type, 'latin1'), u64(16 + body.length), body]);
}

/** A box with size 0: it runs to the end of the file. */
function toEndBox(type: string, ...parts: Uint8Array[]): Buffer {
  return Buffer.concat([u32(0), Buffer.from(type, 'latin1'), ...parts]);
}

function fullBox(type: string, version: number, ...parts: Uint8Array[]): Buffer {
  return box(type, u32(version << 24), ...parts);
}

const IDENTITY_MATRIX = u32(0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000);
const CAPTURED_AT = 0xe0000000; // 2023 in the 1904 epoch of MP4 timestamps

const metadataBoxes = {
  /** QuickTime user data: location, camera, XMP. */
  udta: () =>
    box(
      'udta',
      box('\xa9xyz', Buffer.from([0, LOCATION.length, 0x15, 0xc7]), Buffer.from(LOCATION)),
      box('\xa9mak', Buffer.from([0, 7, 0x15, 0xc7]), Buffer.from('AcmeCam')),
      box('XMP_', Buffer.from('<x:xmpmeta><dc:creator>Alice Example</dc:creator></x:xmpmeta>')),
    ),
  /** QuickTime metadata: hdlr 'mdta', keys, and an ilst value for the location key. */
  meta: () =>
    box(
      'meta',
      fullBox('hdlr', 0, u32(0), Buffer.from('mdta'), u32(0, 0, 0), Buffer.from([0])),
      fullBox('keys', 0, u32(1), box('mdta', Buffer.from('com.apple.quicktime.location.ISO6709'))),
      box('ilst', box('\0\0\0\x01', box('data', u32(1, 0), Buffer.from(LOCATION)))),
    ),
  xmpUuid: () => box('uuid', XMP_UUID, Buffer.from('<x:xmpmeta><dc:creator>Alice Example</dc:creator></x:xmpmeta>')),
  /** Free space often holds what an editor left behind. */
  free: () => box('free', Buffer.from('AcmeCam firmware 1.2, owner Alice Example')),
};
type MetadataKind = keyof typeof metadataBoxes;

type Level = 'top' | 'moov' | 'trak' | 'mdia' | 'minf' | 'stbl';
interface Extra {
  kind: MetadataKind;
  level: Level;
  /** Position among the siblings, taken modulo their count + 1. */
  at: number;
  /** Which track, modulo the track count, for the levels inside a track. */
  track: number;
}

interface TrackSpec {
  handler: 'vide' | 'soun' | 'meta' | 'text';
  /** One sample per chunk. */
  chunks: Buffer[];
  co64?: boolean;
}

interface MovieSpec {
  brand?: string;
  tracks: TrackSpec[];
  mdatFirst?: boolean;
  mdatHeader?: 'compact' | 'large' | 'to-end';
  extras?: Extra[];
  /** Bytes no track reads, put in the media data before, between and after the chunks. */
  mdatSlack?: Buffer;
}

function insertExtras(children: Buffer[], extras: readonly Extra[]): Buffer[] {
  const result = [...children];
  for (const extra of extras) result.splice(extra.at % (result.length + 1), 0, metadataBoxes[extra.kind]());
  return result;
}

function mediaHeader(handler: TrackSpec['handler']): Buffer {
  if (handler === 'vide') return fullBox('vmhd', 0, u32(0, 0));
  if (handler === 'soun') return fullBox('smhd', 0, u32(0));
  return fullBox('nmhd', 0);
}

function trackBox(spec: TrackSpec, index: number, offsets: number[], extras: readonly Extra[], trackCount: number): Buffer {
  const own = (level: Level, children: Buffer[]) => insertExtras(children, extras.filter((e) => e.level === level && e.track % trackCount === index));
  const sampleEntry = box(spec.handler === 'soun' ? 'mp4a' : spec.handler === 'vide' ? 'avc1' : 'mebx', Buffer.alloc(16));
  const stbl = box(
    'stbl',
    ...own('stbl', [
      fullBox('stsd', 0, u32(1), sampleEntry),
      fullBox('stts', 0, u32(1, spec.chunks.length, 1)),
      fullBox('stsc', 0, u32(1, 1, 1, 1)),
      fullBox('stsz', 0, u32(0, spec.chunks.length, ...spec.chunks.map((c) => c.length))),
      spec.co64 ? fullBox('co64', 0, u32(offsets.length), u64(...offsets)) : fullBox('stco', 0, u32(offsets.length, ...offsets)),
    ]),
  );
  const minf = box('minf', ...own('minf', [mediaHeader(spec.handler), box('dinf', fullBox('dref', 0, u32(1), fullBox('url ', 0))), stbl]));
  const mdia = box(
    'mdia',
    ...own('mdia', [
      fullBox('mdhd', 0, u32(CAPTURED_AT, CAPTURED_AT, 1000, spec.chunks.length), Buffer.from([0x15, 0xc7, 0, 0])),
      fullBox('hdlr', 0, u32(0), Buffer.from(spec.handler), u32(0, 0, 0), Buffer.from('Handler\0')),
      minf,
    ]),
  );
  const [width, height] = spec.handler === 'vide' ? [320, 240] : [0, 0];
  const tkhd = fullBox('tkhd', 0, u32(CAPTURED_AT, CAPTURED_AT, index + 1, 0, spec.chunks.length, 0, 0, 0, 0), IDENTITY_MATRIX, u32(width << 16, height << 16));
  return box('trak', ...own('trak', [tkhd, mdia]));
}

function movieBox(spec: MovieSpec, offsets: number[][]): Buffer {
  const extras = spec.extras ?? [];
  const mvhd = fullBox('mvhd', 0, u32(CAPTURED_AT, CAPTURED_AT, 1000, 1000, 0x10000), Buffer.from([1, 0]), Buffer.alloc(10), IDENTITY_MATRIX, Buffer.alloc(24), u32(spec.tracks.length + 1));
  const tracks = spec.tracks.map((track, i) => trackBox(track, i, offsets[i]!, extras, spec.tracks.length));
  return box('moov', ...insertExtras([mvhd, ...tracks], extras.filter((e) => e.level === 'moov')));
}

interface Movie {
  file: Buffer;
  /** Chunk offsets per track, as written. */
  offsets: number[][];
}

/** Lays out ftyp, top-level extras, moov and mdat (chunks interleaved across tracks), with the real chunk offsets. */
function buildMovie(spec: MovieSpec): Movie {
  const ftyp = box('ftyp', Buffer.from(spec.brand ?? 'isom'), u32(0x200), Buffer.from(spec.brand ?? 'isom'), Buffer.from('mp41'));
  const relative: number[][] = spec.tracks.map(() => []);
  const payload: Buffer[] = [];
  let position = 0;
  const addSlack = () => {
    if (!spec.mdatSlack) return;
    payload.push(spec.mdatSlack);
    position += spec.mdatSlack.length;
  };
  addSlack();
  const rounds = Math.max(0, ...spec.tracks.map((t) => t.chunks.length));
  for (let round = 0; round < rounds; round++) {
    spec.tracks.forEach((track, i) => {
      const chunk = track.chunks[round];
      if (!chunk) return;
      relative[i]!.push(position);
      payload.push(chunk);
      position += chunk.length;
    });
    if (round === 0) addSlack();
  }
  addSlack();
  const header = spec.mdatHeader ?? 'compact';
  const data = Buffer.concat(payload);
  const mdat = header === 'large' ? largeBox('mdat', data) : header === 'to-end' ? toEndBox('mdat', data) : box('mdat', data);
  const mdatHeaderSize = header === 'large' ? 16 : 8;
  const topExtras = (spec.extras ?? []).filter((e) => e.level === 'top');
  const layout = (moov: Buffer) => [ftyp, ...insertExtras(spec.mdatFirst ? [mdat, moov] : [moov, mdat], topExtras)];

  const sized = layout(movieBox(spec, relative));
  const payloadStart = sized.slice(0, sized.indexOf(mdat)).reduce((sum, b) => sum + b.length, 0) + mdatHeaderSize;
  const offsets = relative.map((track) => track.map((at) => at + payloadStart));
  return { file: Buffer.concat(layout(movieBox(spec, offsets))), offsets };
}

// ---- An independent reader for the output: the test's own, not the code under test. ----

interface ReadBox {
  type: string;
  start: number;
  end: number;
  body: number;
  children: ReadBox[];
}

const READ_CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'dinf', 'edts', 'udta']);

/** Reads a box tree and fails the test if any size is not exactly within its parent. */
function readTree(file: Buffer, start = 0, end = file.length): ReadBox[] {
  const boxes: ReadBox[] = [];
  let at = start;
  while (at < end) {
    expect(end - at).toBeGreaterThanOrEqual(8);
    const declared = file.readUInt32BE(at);
    const type = file.toString('latin1', at + 4, at + 8);
    const size = declared === 1 ? Number(file.readBigUInt64BE(at + 8)) : declared === 0 ? end - at : declared;
    const body = at + (declared === 1 ? 16 : 8);
    expect(size).toBeGreaterThanOrEqual(body - at);
    expect(at + size).toBeLessThanOrEqual(end);
    boxes.push({ type, start: at, end: at + size, body, children: READ_CONTAINERS.has(type) ? readTree(file, body, at + size) : [] });
    at += size;
  }
  return boxes;
}

function allTypes(boxes: ReadBox[]): string[] {
  return boxes.flatMap((b) => [b.type, ...allTypes(b.children)]);
}

function child(parent: ReadBox, type: string): ReadBox {
  const found = parent.children.find((b) => b.type === type);
  if (!found) throw new Error(`no ${type} in ${parent.type}`);
  return found;
}

/** For each track: its handler and the bytes each of its chunks points at. */
function trackContents(file: Buffer): { handler: string; chunks: Buffer[]; wide: boolean; offsets: number[] }[] {
  const moov = readTree(file).find((b) => b.type === 'moov')!;
  return moov.children
    .filter((b) => b.type === 'trak')
    .map((trak) => {
      const mdia = child(trak, 'mdia');
      const stbl = child(child(mdia, 'minf'), 'stbl');
      const handler = file.toString('latin1', child(mdia, 'hdlr').body + 8, child(mdia, 'hdlr').body + 12);
      const stsz = child(stbl, 'stsz');
      const sizes = Array.from({ length: file.readUInt32BE(stsz.body + 8) }, (_, i) => file.readUInt32BE(stsz.body + 12 + i * 4));
      const offsetBox = stbl.children.find((b) => b.type === 'stco' || b.type === 'co64')!;
      const wide = offsetBox.type === 'co64';
      const offsets = Array.from({ length: file.readUInt32BE(offsetBox.body + 4) }, (_, i) =>
        wide ? Number(file.readBigUInt64BE(offsetBox.body + 8 + i * 8)) : file.readUInt32BE(offsetBox.body + 8 + i * 4),
      );
      return { handler, wide, offsets, chunks: offsets.map((offset, i) => file.subarray(offset, offset + sizes[i]!)) };
    });
}

function accepted(result: MinimisedMedia): Extract<MinimisedMedia, { ok: true }> {
  if (!result.ok) throw new Error(`expected the video to be accepted, got ${result.reason}: ${result.detail}`);
  return result;
}

/** The output is a valid tree, holds no metadata, and every kept track's chunks are the bytes that went in. */
function expectMinimised(output: Buffer, spec: MovieSpec): void {
  const types = allTypes(readTree(output));
  for (const type of ['udta', '\xa9xyz', 'meta', 'uuid', 'free', 'XMP_', 'keys']) expect(types).not.toContain(type);
  for (const secret of SECRETS) expect(output.includes(secret)).toBe(false);
  expect(output.includes(XMP_UUID)).toBe(false);
  const kept = spec.tracks.filter((t) => t.handler === 'vide' || t.handler === 'soun');
  const tracks = trackContents(output);
  expect(tracks.map((t) => t.handler)).toEqual(kept.map((t) => t.handler));
  tracks.forEach((track, i) => {
    expect(track.wide).toBe(kept[i]!.co64 ?? false);
    expect(track.chunks).toEqual(kept[i]!.chunks);
  });
}

const frame = (label: string) => Buffer.from(`<<video frame ${label}>>`);
const sound = (label: string) => Buffer.from(`<<sound ${label}>>`);
const gpsSample = (i: number) => Buffer.from(`gps ${LOCATION} Alice Example sample ${i}`);

const EVERY_EXTRA: Extra[] = [
  { kind: 'free', level: 'top', at: 0, track: 0 },
  { kind: 'xmpUuid', level: 'top', at: 1, track: 0 },
  { kind: 'meta', level: 'top', at: 9, track: 0 },
  { kind: 'udta', level: 'moov', at: 9, track: 0 },
  { kind: 'meta', level: 'moov', at: 1, track: 0 },
  { kind: 'xmpUuid', level: 'moov', at: 2, track: 0 },
  { kind: 'udta', level: 'trak', at: 9, track: 0 },
  { kind: 'meta', level: 'trak', at: 1, track: 0 },
  { kind: 'free', level: 'stbl', at: 2, track: 1 },
];

const MOVIE: MovieSpec = {
  tracks: [
    { handler: 'vide', chunks: [frame('1'), frame('2'), frame('3')] },
    { handler: 'soun', chunks: [sound('1'), sound('2')] },
    { handler: 'meta', chunks: [gpsSample(1), gpsSample(2), gpsSample(3)] },
  ],
  extras: EVERY_EXTRA,
};

describe('minimiseMedia: videos', () => {
  it('removes udta (©xyz, XMP_), meta (location keys), XMP uuid and free boxes and a GPS track, and moves every chunk offset with the data', async () => {
    const input = buildMovie(MOVIE);
    for (const secret of SECRETS) expect(input.file.includes(secret)).toBe(true);
    expect(trackContents(input.file).map((t) => t.chunks)).toEqual(MOVIE.tracks.map((t) => t.chunks));

    const result = accepted(await minimiseMedia(input.file, RULES));

    expect(result).toMatchObject({ kind: 'video', type: 'mp4', mimeType: 'video/mp4', width: 320, height: 240 });
    expect(result.removed).toEqual(expect.arrayContaining(['free', 'xmp', 'meta', 'udta', '©xyz', '©mak', 'XMP_', 'trak:meta', 'creation_time']));
    expectMinimised(result.bytes, MOVIE);
    // moov came before mdat and shrank, so the offsets moved down.
    const videoOffsets = trackContents(result.bytes)[0]!.offsets;
    videoOffsets.forEach((offset, i) => expect(offset).toBeLessThan(input.offsets[0]![i]!));
    expect(result.bytes.length).toBeLessThan(input.file.length);
  });

  it('removes the media data no kept track reads: slack, and the items of a removed meta stored there', async () => {
    const slack = Buffer.from(`meta item ${LOCATION} Alice Example`);
    for (const mdatHeader of ['compact', 'large', 'to-end'] as const) {
      const spec: MovieSpec = { ...MOVIE, mdatHeader, mdatSlack: slack, extras: EVERY_EXTRA.filter((e) => e.level !== 'top' || mdatHeader !== 'to-end') };
      const input = buildMovie(spec);
      expect(input.file.includes(slack)).toBe(true);
      const result = accepted(await minimiseMedia(input.file, RULES));
      expect(result.bytes.includes(slack)).toBe(false);
      expect(result.removed).toContain('mdat:unreferenced');
      expectMinimised(result.bytes, spec);
    }
    // A file whose data every kept track reads loses none of it, and says nothing was unreferenced.
    const whole = accepted(await minimiseMedia(buildMovie({ ...MOVIE, tracks: MOVIE.tracks.slice(0, 2) }).file, RULES));
    expect(whole.removed).not.toContain('mdat:unreferenced');
  });

  it('minimises a file of fifty thousand chunks per track (a few bytes each) in one pass over them', async () => {
    const many = 50_000;
    const spec: MovieSpec = {
      tracks: [
        { handler: 'vide', chunks: Array.from({ length: many }, (_, i) => Buffer.from([0xf0, i & 0xff])) },
        { handler: 'meta', chunks: Array.from({ length: many }, () => Buffer.from('gps')) },
      ],
      mdatSlack: Buffer.from(`slack ${LOCATION}`),
    };
    const result = accepted(await minimiseMedia(buildMovie(spec).file, { ...RULES, videos: { ...RULES.videos, maxBytes: 50_000_000 } }));
    expect(result.bytes.includes(Buffer.from('gps'))).toBe(false);
    expect(Buffer.concat(trackContents(result.bytes)[0]!.chunks).equals(Buffer.concat(spec.tracks[0]!.chunks))).toBe(true);
  });

  it('zeroes the capture times of the movie, track and media headers', async () => {
    const result = accepted(await minimiseMedia(buildMovie(MOVIE).file, RULES));
    const moov = readTree(result.bytes).find((b) => b.type === 'moov')!;
    const trak = child(moov, 'trak');
    for (const header of [child(moov, 'mvhd'), child(trak, 'tkhd'), child(child(trak, 'mdia'), 'mdhd')]) {
      expect(result.bytes.readUInt32BE(header.body + 4)).toBe(0);
      expect(result.bytes.readUInt32BE(header.body + 8)).toBe(0);
    }
  });

  it('rewrites co64 offsets and a 64-bit mdat header', async () => {
    const spec: MovieSpec = { ...MOVIE, tracks: MOVIE.tracks.map((t) => ({ ...t, co64: true })), mdatHeader: 'large' };
    const result = accepted(await minimiseMedia(buildMovie(spec).file, RULES));
    expectMinimised(result.bytes, spec);
    const mdat = readTree(result.bytes).find((b) => b.type === 'mdat')!;
    expect(result.bytes.readUInt32BE(mdat.start)).toBe(1);
  });

  it('keeps a size-0 mdat (to the end of the file) as it is', async () => {
    const spec: MovieSpec = { ...MOVIE, mdatHeader: 'to-end', extras: EVERY_EXTRA.filter((e) => e.level !== 'top') };
    const result = accepted(await minimiseMedia(buildMovie(spec).file, RULES));
    expectMinimised(result.bytes, spec);
    const mdat = readTree(result.bytes).find((b) => b.type === 'mdat')!;
    expect(result.bytes.readUInt32BE(mdat.start)).toBe(0);
  });

  it('leaves the offsets of a file whose mdat comes first as they were, when nothing before it is removed', async () => {
    const spec: MovieSpec = { ...MOVIE, tracks: MOVIE.tracks.slice(0, 2), mdatFirst: true, extras: EVERY_EXTRA.filter((e) => e.level !== 'top') };
    const input = buildMovie(spec);
    const result = accepted(await minimiseMedia(input.file, RULES));
    expectMinimised(result.bytes, spec);
    expect(trackContents(result.bytes).map((t) => t.offsets)).toEqual(input.offsets);
  });

  it('handles QuickTime as QuickTime', async () => {
    const spec: MovieSpec = { ...MOVIE, brand: 'qt  ' };
    const result = accepted(await minimiseMedia(buildMovie(spec).file, RULES));
    expect(result).toMatchObject({ type: 'quicktime', mimeType: 'video/quicktime' });
    expectMinimised(result.bytes, spec);
  });

  it('refuses videos when the rules do not allow them, or not of this type', async () => {
    const { file } = buildMovie(MOVIE);
    expect(await minimiseMedia(file, { ...RULES, videos: { ...RULES.videos, allow: false } })).toMatchObject({ ok: false, reason: 'media.type_not_allowed' });
    expect(await minimiseMedia(file, { ...RULES, videos: { ...RULES.videos, types: ['quicktime'] } })).toMatchObject({ ok: false, reason: 'media.type_not_allowed' });
    expect(await minimiseMedia(file, { ...RULES, videos: { ...RULES.videos, maxBytes: file.length - 1 } })).toMatchObject({ ok: false, reason: 'media.too_large' });
  });

  describe('fails closed on hostile or unsupported files', () => {
    const ftyp = box('ftyp', Buffer.from('isom'), u32(0), Buffer.from('isom'));
    const unreadable = { ok: false, reason: 'media.unreadable' };

    async function expectUnreadable(file: Buffer, detail: RegExp): Promise<void> {
      const result = await minimiseMedia(file, RULES);
      expect(result).toMatchObject(unreadable);
      if (!result.ok) expect(result.detail).toMatch(detail);
    }

    it('a box that ends past its parent', async () => {
      const moov = box('moov', box('trak', Buffer.alloc(16)));
      moov.writeUInt32BE(100, 8); // trak claims 100 bytes inside a 32-byte moov
      await expectUnreadable(Buffer.concat([ftyp, moov]), /ends past its parent/);
    });

    it('a 64-bit size that points outside the file', async () => {
      const mdat = largeBox('mdat', Buffer.alloc(8));
      mdat.writeBigUInt64BE(2n ** 40n, 8);
      await expectUnreadable(Buffer.concat([ftyp, mdat]), /ends past its parent/);
    });

    it('a size smaller than a box header', async () => {
      await expectUnreadable(Buffer.concat([ftyp, u32(4), Buffer.from('moov'), Buffer.alloc(8)]), /smaller than its header/);
    });

    it('size 0 below the top level', async () => {
      await expectUnreadable(Buffer.concat([ftyp, box('moov', u32(0), Buffer.from('trak'))]), /size 0 below the top level/);
    });

    it('nesting deeper than 16 levels', async () => {
      let nested = box('trak');
      for (let depth = 0; depth < 20; depth++) nested = box('trak', nested);
      await expectUnreadable(Buffer.concat([ftyp, box('moov', nested)]), /nested more than 16 deep/);
    });

    it('more than 10,000 boxes', async () => {
      const many = Buffer.concat(Array.from({ length: MAX_BOX_COUNT + 1 }, () => box('free')));
      await expectUnreadable(Buffer.concat([ftyp, many]), /more than 10000 boxes/);
    });

    it('a truncated file', async () => {
      const { file } = buildMovie(MOVIE);
      for (const length of [file.length - 1, Math.floor(file.length / 2), 40, 20]) {
        await expectUnreadable(file.subarray(0, length), /.+/);
      }
    });

    it('fragmented MP4', async () => {
      const { file } = buildMovie(MOVIE);
      await expectUnreadable(Buffer.concat([file, box('moof', box('mfhd'))]), /fragmented/);
    });

    it('a chunk offset outside the media data', async () => {
      const { file, offsets } = buildMovie({ tracks: [MOVIE.tracks[0]!] });
      const stco = file.indexOf(u32(offsets[0]!.length, ...offsets[0]!));
      file.writeUInt32BE(file.length + 100, stco + 4);
      await expectUnreadable(file, /outside the media data/);
    });

    it('sample tables that disagree', async () => {
      const { file } = buildMovie({ tracks: [MOVIE.tracks[0]!] });
      const stsz = file.indexOf('stsz');
      file.writeUInt32BE(1, stsz + 12); // one sample for three chunks
      await expectUnreadable(file, /disagree|more samples/);
    });

    it('a movie without a video track', async () => {
      await expectUnreadable(buildMovie({ tracks: [MOVIE.tracks[1]!, MOVIE.tracks[2]!] }).file, /no video track/);
    });

    it('random bytes after an MP4 ftyp, without throwing', async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (tail) => {
          const result = await minimiseMedia(Buffer.concat([ftyp, tail]), RULES);
          expect(result.ok).toBe(false);
        }),
        { numRuns: 200 },
      );
    });
  });

  it('property: for random trees with metadata inserted anywhere, no metadata is left and every chunk points at its payload', async () => {
    const chunk = fc.uint8Array({ minLength: 1, maxLength: 48 }).map((bytes) => Buffer.from(bytes));
    // Timed metadata and text samples carry a location, so a sample left behind shows.
    const sample = (handler: TrackSpec['handler']) => (handler === 'vide' || handler === 'soun' ? chunk : chunk.map((c) => Buffer.concat([Buffer.from(LOCATION), c])));
    const track = (handler: TrackSpec['handler']) =>
      fc.record({ handler: fc.constant(handler), chunks: fc.array(sample(handler), { maxLength: 6 }), co64: fc.boolean() });
    const extra = fc.record({
      kind: fc.constantFrom<MetadataKind>('udta', 'meta', 'xmpUuid', 'free'),
      level: fc.constantFrom<Level>('top', 'moov', 'trak', 'mdia', 'minf', 'stbl'),
      at: fc.nat(8),
      track: fc.nat(3),
    });
    const movie = fc.record({
      brand: fc.constantFrom('isom', 'mp42', 'qt  '),
      tracks: fc
        .tuple(fc.array(track('vide'), { minLength: 1, maxLength: 2 }), fc.array(fc.oneof(track('soun'), track('meta'), track('text')), { maxLength: 3 }))
        .chain(([video, others]) => fc.shuffledSubarray([...video, ...others], { minLength: video.length + others.length })),
      mdatFirst: fc.boolean(),
      mdatHeader: fc.constantFrom<MovieSpec['mdatHeader']>('compact', 'large'),
      extras: fc.array(extra, { maxLength: 8 }),
    });

    await fc.assert(
      fc.asyncProperty(movie, async (spec) => {
        const result = accepted(await minimiseMedia(buildMovie(spec).file, RULES));
        expectMinimised(result.bytes, spec);
      }),
      { numRuns: 150 },
    );
  });
});

describe('mp4 boxes', () => {
  it('parses 32-bit, 64-bit and to-the-end sizes and uuid extended types', () => {
    const file = Buffer.concat([box('ftyp', Buffer.from('isom')), largeBox('moov', box('mvhd')), box('uuid', XMP_UUID), toEndBox('mdat', Buffer.alloc(5))]);
    const boxes = parseBoxes(file, new Set(['moov']));
    expect(boxes.map((b) => [b.type, b.start, b.end, b.headerSize, b.sizeField])).toEqual([
      ['ftyp', 0, 12, 8, 'compact'],
      ['moov', 12, 36, 16, 'large'],
      ['uuid', 36, 60, 24, 'compact'],
      ['mdat', 60, 73, 8, 'to-end'],
    ]);
    expect(boxes[1]!.children.map((b) => b.type)).toEqual(['mvhd']);
    expect(boxes[2]!.userType).toBe(XMP_UUID.toString('hex'));
  });

  it('writes a file without the cuts, shrinking every box around them', () => {
    const file = Buffer.concat([box('moov', box('trak', box('tkhd', Buffer.alloc(4)), box('udta', Buffer.alloc(6)))), largeBox('mdat', Buffer.from('0123456789'))]);
    const boxes = parseBoxes(file, new Set(['moov', 'trak']));
    const udta = boxes[0]!.children[0]!.children[1]!;
    const mdat = boxes[1]!;
    const cuts = new ByteCuts([{ start: udta.start, end: udta.end }, { start: mdat.end - 4, end: mdat.end - 2 }]);

    const output = writeWithout(file, boxes, cuts, []);

    expect(output).toEqual(Buffer.concat([box('moov', box('trak', box('tkhd', Buffer.alloc(4)))), largeBox('mdat', Buffer.from('01234589'))]));
    expect(cuts.newOffset(mdat.start)).toBe(mdat.start - 14);
    expect(cuts.removedBefore(mdat.end - 3)).toBe(14 + 1);
  });

  it('refuses a cut that splits a box header', () => {
    const file = Buffer.concat([box('moov', box('mvhd', Buffer.alloc(4)))]);
    const boxes = parseBoxes(file, new Set(['moov']));
    expect(() => writeWithout(file, boxes, new ByteCuts([{ start: 10, end: 14 }]), [])).toThrow(Mp4FormatError);
  });
});
