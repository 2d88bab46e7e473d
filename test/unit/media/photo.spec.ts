import { describe, expect, it } from '@jest/globals';
import exifr from 'exifr';
import { crc32 } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { type MediaRules, type MinimisedMedia, minimiseMedia } from '../../../src/policy/media/index.js';

const RULES: MediaRules = {
  photos: { allow: true, types: ['jpeg', 'png', 'heic', 'webp'], maxBytes: 5_000_000, maxPixels: 40_000_000, maxDimension: 10_000 },
  videos: { allow: true, types: ['mp4', 'quicktime'], maxBytes: 16_000_000 },
};

function withPhotos(photos: Partial<MediaRules['photos']>): MediaRules {
  return { ...RULES, photos: { ...RULES.photos, ...photos } };
}

/** Everything personal the fixtures carry: none of it may reach the output. */
const PERSONAL = ['Alice', 'AcmeCam'];

const WIDTH = 60;
const HEIGHT = 40;
const RED = [200, 10, 10];
const BLUE = [0, 10, 200];

/** 60x40 red pixels with a blue top-left quadrant, so a rotation shows. */
function quadrantPixels(): Sharp {
  const pixels = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) pixels.set(x < WIDTH / 2 && y < HEIGHT / 2 ? BLUE : RED, (y * WIDTH + x) * 3);
  }
  return sharp(pixels, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } });
}

const EXIF = {
  IFD0: { Make: 'AcmeCam', ImageDescription: 'Alice at home' },
  IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '52/1 5/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '5/1 7/1 12/1' },
};
const XMP =
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Alice Example</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>';

function jpegSegment(marker: number, body: Buffer): Buffer {
  const header = Buffer.from([0xff, marker, 0, 0]);
  header.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([header, body]);
}

/** APP13 "Photoshop 3.0" with an 8BIM IPTC-NAA resource holding 2:80 By-line. */
function iptcSegment(byline: string): Buffer {
  const dataset = Buffer.concat([Buffer.from([0x1c, 2, 80, 0, byline.length]), Buffer.from(byline, 'latin1')]);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(dataset.length);
  const resource = Buffer.concat([Buffer.from('8BIM'), Buffer.from([0x04, 0x04, 0, 0]), size, dataset, Buffer.alloc(dataset.length % 2)]);
  return jpegSegment(0xed, Buffer.concat([Buffer.from('Photoshop 3.0\0', 'latin1'), resource]));
}

/** A JPEG with every kind of metadata: EXIF (orientation 6, GPS), XMP, a Display P3 profile, IPTC and a COM comment. */
async function jpegWithEverything(): Promise<Buffer> {
  const jpeg = await quadrantPixels().jpeg().withMetadata({ orientation: 6 }).withExif(EXIF).withXmp(XMP).withIccProfile('p3').toBuffer();
  return Buffer.concat([jpeg.subarray(0, 2), iptcSegment('Alice Example'), jpegSegment(0xfe, Buffer.from('Alice Example was here')), jpeg.subarray(2)]);
}

/** Markers of the segments before the image data. */
function jpegMarkers(jpeg: Buffer): number[] {
  const markers: number[] = [];
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff && jpeg[at + 1] !== 0xda) {
    markers.push(jpeg[at + 1]!);
    at += 2 + jpeg.readUInt16BE(at + 2);
  }
  return markers;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

function pngChunkTypes(png: Buffer): string[] {
  const types: string[] = [];
  for (let at = 8; at + 8 <= png.length; at += 12 + png.readUInt32BE(at)) types.push(png.toString('latin1', at + 4, at + 8));
  return types;
}

/** Inserts chunks right after IHDR (8-byte signature + 25-byte IHDR chunk). */
function withPngChunks(png: Buffer, ...chunks: Buffer[]): Buffer {
  return Buffer.concat([png.subarray(0, 33), ...chunks, png.subarray(33)]);
}

async function pixelAt(image: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [...data.subarray(at, at + 3)];
}

function expectColour(actual: number[], expected: number[]): void {
  actual.forEach((channel, i) => expect(Math.abs(channel - expected[i]!)).toBeLessThanOrEqual(6));
}

function accepted(result: MinimisedMedia): Extract<MinimisedMedia, { ok: true }> {
  if (!result.ok) throw new Error(`expected the media to be accepted, got ${result.reason}: ${result.detail}`);
  return result;
}

async function expectNoMetadata(image: Buffer): Promise<void> {
  const metadata = await sharp(image).metadata();
  expect(metadata).not.toHaveProperty('exif');
  expect(metadata).not.toHaveProperty('xmp');
  expect(metadata).not.toHaveProperty('iptc');
  expect(metadata).not.toHaveProperty('icc');
  expect(metadata.comments ?? []).toEqual([]);
  for (const text of PERSONAL) expect(image.includes(text)).toBe(false);
}

describe('minimiseMedia: photos', () => {
  it('strips EXIF with GPS, XMP, IPTC, ICC and a JPEG comment, applying the orientation to the pixels first', async () => {
    const input = await jpegWithEverything();
    expect(await exifr.gps(input)).toEqual({ latitude: expect.closeTo(52.09, 5), longitude: expect.closeTo(5.12, 5) });
    const before = await exifr.parse(input, { gps: true, xmp: true, iptc: true, icc: false });
    expect(before).toMatchObject({ Make: 'AcmeCam', creator: 'Alice Example', Byline: 'Alice Example', GPSLatitudeRef: 'N' });
    const inputMetadata = await sharp(input).metadata();
    expect([inputMetadata.width, inputMetadata.height, inputMetadata.orientation]).toEqual([60, 40, 6]);
    expect(input.includes('Alice Example was here')).toBe(true);

    const result = accepted(await minimiseMedia(input, RULES));

    expect(result).toMatchObject({ kind: 'photo', type: 'jpeg', mimeType: 'image/jpeg', width: 40, height: 60 });
    expect(result.removed).toEqual(['exif', 'gps', 'xmp', 'iptc', 'icc', 'comment']);
    expect(await exifr.gps(result.bytes)).toBeUndefined();
    expect(await exifr.parse(result.bytes, { gps: true, xmp: true, iptc: true, icc: true })).toBeUndefined();
    await expectNoMetadata(result.bytes);
    // Only JFIF (APP0), quantisation, frame and Huffman tables: no APP1 (EXIF/XMP), APP2 (ICC), APP13 (IPTC) or COM.
    expect(jpegMarkers(result.bytes).filter((m) => (m >= 0xe1 && m <= 0xef) || m === 0xfe)).toEqual([]);
    const outputMetadata = await sharp(result.bytes).metadata();
    expect([outputMetadata.width, outputMetadata.height, outputMetadata.orientation]).toEqual([40, 60, undefined]);
    // Turned a quarter clockwise: the blue top-left quadrant is now top-right. The P3 pixels were
    // converted to sRGB, so red reads as the red that went in rather than its P3 encoding.
    expectColour(await pixelAt(result.bytes, 35, 5), BLUE);
    expectColour(await pixelAt(result.bytes, 5, 55), RED);
    expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('strips PNG text (tEXt, iTXt) and EXIF (eXIf) chunks and keeps the PNG as PNG', async () => {
    const clean = await quadrantPixels().png().toBuffer();
    const exifBlock = (await sharp(await quadrantPixels().jpeg().withExif(EXIF).toBuffer()).metadata()).exif!.subarray(6);
    const input = withPngChunks(
      clean,
      pngChunk('tEXt', Buffer.from('Author\0Alice Example', 'latin1')),
      pngChunk('iTXt', Buffer.from('Comment\0\0\0\0\0Alice lives at 52.09 N', 'latin1')),
      pngChunk('eXIf', exifBlock),
    );
    expect(pngChunkTypes(input)).toEqual(expect.arrayContaining(['tEXt', 'iTXt', 'eXIf']));
    expect(await exifr.parse(input, { gps: true })).toMatchObject({ Author: 'Alice Example', GPSLatitudeRef: 'N' });

    const result = accepted(await minimiseMedia(input, RULES));

    expect(result).toMatchObject({ type: 'png', mimeType: 'image/png', width: 60, height: 40 });
    expect(result.removed).toEqual(['exif', 'gps', 'comment']);
    // Pixels and the pixel density (pHYs, which libvips always writes) only.
    expect(pngChunkTypes(result.bytes).filter((t) => !['IHDR', 'pHYs', 'IDAT', 'IEND'].includes(t))).toEqual([]);
    expect(await exifr.parse(result.bytes, { gps: true, xmp: true, iptc: true, icc: true })).not.toHaveProperty('GPSLatitude');
    await expectNoMetadata(result.bytes);
    expectColour(await pixelAt(result.bytes, 5, 5), BLUE);
  });

  it('turns an opaque WebP into JPEG and a transparent one into PNG, without their EXIF', async () => {
    const opaque = await quadrantPixels().webp().withExif(EXIF).toBuffer();
    const transparent = await quadrantPixels().ensureAlpha(0.5).webp().withExif(EXIF).toBuffer();

    const fromOpaque = accepted(await minimiseMedia(opaque, RULES));
    const fromTransparent = accepted(await minimiseMedia(transparent, RULES));

    expect(fromOpaque).toMatchObject({ type: 'webp', mimeType: 'image/jpeg', removed: ['exif', 'gps'] });
    expect(fromTransparent).toMatchObject({ type: 'webp', mimeType: 'image/png', removed: ['exif', 'gps'] });
    expect((await sharp(fromTransparent.bytes).metadata()).hasAlpha).toBe(true);
    await expectNoMetadata(fromOpaque.bytes);
    await expectNoMetadata(fromTransparent.bytes);
  });

  // The prebuilt libheif has AV1 (aom) but no HEVC codec: sharp cannot encode a HEVC HEIC, so the
  // HEIF path is exercised with an AV1-coded HEIF; an iPhone (HEVC) HEIC is refused as unreadable.
  it('turns a HEIF photo into a JPEG without its EXIF (AV1-coded HEIF: the prebuilt libheif has no HEVC encoder)', async () => {
    const input = await quadrantPixels().heif({ compression: 'av1' }).withExif(EXIF).toBuffer();
    expect(await exifr.gps((await sharp(input).metadata()).exif!.subarray(6))).toEqual({ latitude: expect.closeTo(52.09, 5), longitude: expect.closeTo(5.12, 5) });

    const result = accepted(await minimiseMedia(input, RULES));

    expect(result).toMatchObject({ type: 'heic', mimeType: 'image/jpeg', width: 60, height: 40, removed: ['exif', 'gps'] });
    expect(await exifr.gps(result.bytes)).toBeUndefined();
    await expectNoMetadata(result.bytes);
    expectColour(await pixelAt(result.bytes, 50, 30), RED);
  });

  it('refuses photos above the dimension or pixel limits before decoding them', async () => {
    const input = await quadrantPixels().png().toBuffer();
    expect(await minimiseMedia(input, withPhotos({ maxDimension: 59 }))).toMatchObject({ ok: false, reason: 'media.too_large' });
    expect(await minimiseMedia(input, withPhotos({ maxDimension: 60, maxPixels: 2399 }))).toMatchObject({ ok: false, reason: 'media.too_large' });
    expect(await minimiseMedia(input, withPhotos({ maxDimension: 60, maxPixels: 2400 }))).toMatchObject({ ok: true });
  });

  it('refuses a PNG that declares 100000x100000 pixels (a decompression bomb) from its header alone', async () => {
    const header = Buffer.alloc(13);
    header.writeUInt32BE(100_000, 0);
    header.writeUInt32BE(100_000, 4);
    header[8] = 8; // bit depth
    header[9] = 2; // truecolour
    const bomb = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      pngChunk('IHDR', header),
      pngChunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
      pngChunk('IEND', Buffer.alloc(0)),
    ]);
    const rssBefore = process.memoryUsage().rss;

    expect(await minimiseMedia(bomb, RULES)).toMatchObject({ ok: false, reason: 'media.too_large' });
    expect(await minimiseMedia(bomb, withPhotos({ maxDimension: 200_000 }))).toMatchObject({ ok: false, reason: 'media.too_large' });
    // 30 GB of pixels were declared; nothing near that was allocated.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200_000_000);
  });

  it('checks the byte size first: an oversized input is too large even when it is not an image at all', async () => {
    const noise = Buffer.alloc(2_000, 7);
    expect(await minimiseMedia(noise, withPhotos({ maxBytes: 1_000 }))).toMatchObject({ ok: false, reason: 'media.unreadable' });
    const tight: MediaRules = { photos: { ...RULES.photos, maxBytes: 1_000 }, videos: { ...RULES.videos, maxBytes: 1_000 } };
    expect(await minimiseMedia(noise, tight)).toMatchObject({ ok: false, reason: 'media.too_large' });
    const photo = await quadrantPixels().png().toBuffer();
    expect(await minimiseMedia(photo, withPhotos({ maxBytes: photo.length - 1 }))).toMatchObject({ ok: false, reason: 'media.too_large' });
  });

  it('refuses a type the rules do not allow, before decoding anything', async () => {
    const png = await quadrantPixels().png().toBuffer();
    expect(await minimiseMedia(png, withPhotos({ types: ['jpeg'] }))).toMatchObject({ ok: false, reason: 'media.type_not_allowed' });
    expect(await minimiseMedia(png, withPhotos({ allow: false }))).toMatchObject({ ok: false, reason: 'media.type_not_allowed' });
    // A PNG signature and nothing else: refused for its type, never handed to the decoder.
    expect(await minimiseMedia(png.subarray(0, 8), withPhotos({ types: ['jpeg'] }))).toMatchObject({ ok: false, reason: 'media.type_not_allowed' });
  });

  it('refuses truncated and corrupt JPEGs, and random bytes, as unreadable', async () => {
    const noisy = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#000000', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).jpeg().toBuffer();
    const truncated = noisy.subarray(0, noisy.length / 2);
    const corruptHeader = Buffer.concat([noisy.subarray(0, 4), Buffer.alloc(200, 0x5a), noisy.subarray(204)]);
    const random = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251));

    for (const input of [truncated, corruptHeader, random, Buffer.alloc(0), Buffer.from([0xff, 0xd8, 0xff])]) {
      const result = await minimiseMedia(input, RULES);
      expect(result).toMatchObject({ ok: false, reason: 'media.unreadable' });
    }
  });

  it('refuses image and video formats it does not minimise for their type, not as unreadable', async () => {
    const gif = await quadrantPixels().gif().toBuffer();
    const tiff = await quadrantPixels().tiff().toBuffer();
    const svg = Buffer.from('<?xml version="1.0"?>\n<!-- a drawing -->\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>');
    const bmp = Buffer.concat([Buffer.from('BM'), Buffer.alloc(12), Buffer.from([40, 0, 0, 0]), Buffer.alloc(40)]);
    const webm = Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), Buffer.alloc(60)]);
    const threeGp = Buffer.concat([Buffer.from([0, 0, 0, 20]), Buffer.from('ftyp3gp4'), Buffer.alloc(8)]);
    const refused = await Promise.all([gif, tiff, svg, bmp, webm, threeGp].map((bytes) => minimiseMedia(bytes, RULES)));
    expect(refused.map((r) => (r.ok ? 'ok' : [r.reason, r.detail.split(' ')[0]]))).toEqual([
      ['media.type_not_allowed', 'gif'],
      ['media.type_not_allowed', 'tiff'],
      ['media.type_not_allowed', 'svg'],
      ['media.type_not_allowed', 'bmp'],
      ['media.type_not_allowed', 'webm'],
      ['media.type_not_allowed', 'ISO'],
    ]);
    // Text that merely opens like one is not that format.
    expect(await minimiseMedia(Buffer.from('BMW opened a new plant in Born today.'), RULES)).toMatchObject({ ok: false, reason: 'media.unreadable' });
  });

  it('refuses bytes whose signature and content disagree', async () => {
    const png = await quadrantPixels().png().toBuffer();
    const jpegSignatureOnPng = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), png]);
    expect(await minimiseMedia(jpegSignatureOnPng, RULES)).toMatchObject({ ok: false, reason: 'media.unreadable' });
  });
});
