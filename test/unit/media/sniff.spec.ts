import { describe, expect, it } from '@jest/globals';
import sharp from 'sharp';
import { sniffMediaType } from '../../../src/policy/media/index.js';

const pixels = () => sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 10, g: 120, b: 200 } } });

/** An ftyp box: major brand, minor version 0, compatible brands, then a few bytes of whatever follows. */
function fileTypeBox(major: string, ...compatible: string[]): Buffer {
  const size = 16 + compatible.length * 4;
  const header = Buffer.alloc(8);
  header.writeUInt32BE(size);
  header.write('ftyp', 4, 'latin1');
  return Buffer.concat([header, Buffer.from(major, 'latin1'), Buffer.alloc(4), ...compatible.map((b) => Buffer.from(b, 'latin1')), Buffer.alloc(8)]);
}

describe('sniffMediaType', () => {
  it('recognises photos by their signatures', async () => {
    expect(sniffMediaType(await pixels().jpeg().toBuffer())).toBe('jpeg');
    expect(sniffMediaType(await pixels().png().toBuffer())).toBe('png');
    expect(sniffMediaType(await pixels().webp().toBuffer())).toBe('webp');
    expect(sniffMediaType(await pixels().avif().toBuffer())).toBe('heic');
  });

  it('recognises HEIF, MP4 and QuickTime by the brands of their ftyp box', () => {
    expect(sniffMediaType(fileTypeBox('heic', 'mif1', 'heic'))).toBe('heic');
    expect(sniffMediaType(fileTypeBox('mif1', 'mif1', 'heic'))).toBe('heic');
    expect(sniffMediaType(fileTypeBox('isom', 'isom', 'avc1'))).toBe('mp4');
    expect(sniffMediaType(fileTypeBox('mp42', 'mp41'))).toBe('mp4');
    expect(sniffMediaType(fileTypeBox('qt  ', 'qt  '))).toBe('quicktime');
    // An unknown major brand is classified by its first known compatible brand.
    expect(sniffMediaType(fileTypeBox('XAVC', 'XAVC', 'mp42', 'iso2'))).toBe('mp4');
  });

  it('recognises QuickTime written before ftyp existed by its first atom', () => {
    const atom = (type: string) => Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from(type, 'latin1'), Buffer.alloc(8)]);
    expect(sniffMediaType(atom('moov'))).toBe('quicktime');
    expect(sniffMediaType(atom('wide'))).toBe('quicktime');
    expect(sniffMediaType(atom('mdat'))).toBe('quicktime');
    expect(sniffMediaType(atom('trak'))).toBeUndefined();
  });

  it('reads bytes only: PNG bytes meant to be "photo.jpg" are PNG, and the function takes no name at all', async () => {
    const png = await pixels().png().toBuffer();
    expect(sniffMediaType.length).toBe(1);
    expect(sniffMediaType(png)).toBe('png');
  });

  it('accepts a Uint8Array view into a larger buffer', async () => {
    const jpeg = await pixels().jpeg().toBuffer();
    const padded = new Uint8Array(jpeg.length + 10);
    padded.set(jpeg, 10);
    expect(sniffMediaType(padded.subarray(10))).toBe('jpeg');
  });

  it('is undefined for anything else', () => {
    expect(sniffMediaType(Buffer.alloc(0))).toBeUndefined();
    expect(sniffMediaType(Buffer.from([0xff, 0xd8]))).toBeUndefined();
    expect(sniffMediaType(Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1'))).toBeUndefined();
    expect(sniffMediaType(Buffer.from('RIFF\0\0\0\0WAVEfmt ', 'latin1'))).toBeUndefined();
    expect(sniffMediaType(fileTypeBox('M4A ', 'M4A '))).toBeUndefined();
    expect(sniffMediaType(Buffer.from('<?xml version="1.0"?><svg/>'))).toBeUndefined();
    // An ftyp box that declares less than its own brand fields.
    const tiny = fileTypeBox('isom');
    tiny.writeUInt32BE(12);
    expect(sniffMediaType(tiny)).toBeUndefined();
  });
});
