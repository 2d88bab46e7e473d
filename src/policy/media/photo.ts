import sharp, { type Metadata, type OutputInfo } from 'sharp';
import type { PhotoType } from './sniff.js';

/**
 * Photo minimisation: decode and re-encode, so that only pixels cross. Everything a camera or an
 * editor attaches (EXIF with GPS, XMP, IPTC, comments, thumbnails, gain maps) is left behind, and
 * colours are converted to sRGB so the embedded ICC profile can go too.
 */

export interface PhotoLimits {
  maxBytes: number;
  maxPixels: number;
  maxDimension: number;
}

export type PhotoOutcome =
  | { ok: true; mimeType: 'image/jpeg' | 'image/png'; bytes: Buffer; width: number; height: number; removed: string[] }
  | { ok: false; reason: 'media.too_large' | 'media.unreadable'; detail: string };

/** sharp's name for the decoder each sniffed type must be read by. */
const DECODER: Record<PhotoType, Metadata['format']> = { jpeg: 'jpeg', png: 'png', webp: 'webp', heic: 'heif' };

/**
 * 'error' fails on truncated or corrupt pixel data; the stricter 'warning' would also refuse
 * the benign libjpeg warnings (extraneous bytes before a marker) that many phone photos carry.
 */
const FAIL_ON = 'error';

/** A single re-encode at this quality is visually lossless; WhatsApp recompresses on its side. */
const JPEG_QUALITY = 85;

const GPS_IFD_POINTER_TAG = 0x8825;
const JPEG_COMMENT_MARKER = 0xfe;
const JPEG_START_OF_SCAN = 0xda;
const JPEG_END_OF_IMAGE = 0xd9;

function unreadable(detail: string): PhotoOutcome {
  return { ok: false, reason: 'media.unreadable', detail };
}

function tooLarge(detail: string): PhotoOutcome {
  return { ok: false, reason: 'media.too_large', detail };
}

/** sharp's limit is an integer no larger than Number.MAX_SAFE_INTEGER, and 0 would mean no limit at all. */
function pixelLimit(maxPixels: number): number {
  return Math.max(1, Math.min(Math.floor(maxPixels), Number.MAX_SAFE_INTEGER));
}

/** Whether an EXIF block (TIFF structure, with or without sharp's "Exif\0\0" prefix) points to a non-empty GPS IFD. */
function exifHasGps(exif: Buffer): boolean {
  const tiff = exif.toString('latin1', 0, 6) === 'Exif\0\0' ? exif.subarray(6) : exif;
  if (tiff.length < 8) return false;
  const byteOrder = tiff.toString('latin1', 0, 2);
  if (byteOrder !== 'II' && byteOrder !== 'MM') return false;
  const little = byteOrder === 'II';
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const ifd0 = u32(4);
  if (ifd0 + 2 > tiff.length) return false;
  const entries = u16(ifd0);
  for (let i = 0; i < entries; i++) {
    const entry = ifd0 + 2 + i * 12;
    if (entry + 12 > tiff.length) return false;
    if (u16(entry) === GPS_IFD_POINTER_TAG) {
      const gpsIfd = u32(entry + 8);
      return gpsIfd + 2 <= tiff.length && u16(gpsIfd) > 0;
    }
  }
  return false;
}

/** Whether a JPEG has a COM segment before its image data; sharp's metadata does not report them. */
function jpegHasComment(jpeg: Buffer): boolean {
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff) {
    const marker = jpeg[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte before a marker
      continue;
    }
    if (marker === JPEG_COMMENT_MARKER) return true;
    if (marker === JPEG_START_OF_SCAN || marker === JPEG_END_OF_IMAGE) return false;
    at += 2 + jpeg.readUInt16BE(at + 2);
  }
  return false;
}

/** What the input carried besides pixels: all of it is gone from the re-encoded photo. */
function metadataOf(bytes: Buffer, type: PhotoType, metadata: Metadata): string[] {
  const found: string[] = [];
  if (metadata.exif) {
    found.push('exif');
    if (exifHasGps(metadata.exif)) found.push('gps');
  }
  if (metadata.xmp) found.push('xmp');
  if (metadata.iptc) found.push('iptc');
  if (metadata.icc) found.push('icc');
  if ((metadata.comments?.length ?? 0) > 0 || (type === 'jpeg' && jpegHasComment(bytes))) found.push('comment');
  return found;
}

/**
 * WhatsApp takes JPEG and PNG only. PNG stays PNG (often line art or screenshots, and may be
 * transparent); a transparent WebP becomes PNG; everything else, HEIC included, becomes JPEG.
 */
function outputFormatFor(type: PhotoType, hasAlpha: boolean): 'jpeg' | 'png' {
  if (type === 'png' || (type === 'webp' && hasAlpha)) return 'png';
  return 'jpeg';
}

/** Re-encodes a photo of the given (sniffed) type within the limits. Never throws. */
export async function minimisePhoto(bytes: Buffer, type: PhotoType, limits: PhotoLimits): Promise<PhotoOutcome> {
  let metadata: Metadata;
  try {
    // Reads the header only, so the declared size is known before any pixel is allocated.
    metadata = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch {
    return unreadable(`the ${type} header could not be read`);
  }
  if (metadata.format !== DECODER[type]) return unreadable(`the bytes look like ${type} but decode as ${metadata.format}`);
  const { width, height } = metadata;
  if (width > limits.maxDimension || height > limits.maxDimension) {
    return tooLarge(`the photo is ${width}x${height} pixels; no side may exceed ${limits.maxDimension}`);
  }
  if (width * height > limits.maxPixels) {
    return tooLarge(`the photo has ${width * height} pixels; the limit is ${limits.maxPixels}`);
  }

  const format = outputFormatFor(type, metadata.hasAlpha);
  // rotate() applies the EXIF orientation to the pixels before the EXIF is dropped; without
  // withMetadata/keepExif/keepIccProfile sharp writes no metadata, and toColourspace converts
  // through the embedded ICC profile so the output needs none. JPEG has no transparency: any
  // alpha is flattened onto white rather than black.
  let pipeline = sharp(bytes, { failOn: FAIL_ON, limitInputPixels: pixelLimit(limits.maxPixels) }).rotate().toColourspace('srgb');
  pipeline = format === 'png' ? pipeline.png() : pipeline.flatten({ background: '#ffffff' }).jpeg({ quality: JPEG_QUALITY });
  let output: { data: Buffer; info: OutputInfo };
  try {
    output = await pipeline.toBuffer({ resolveWithObject: true });
  } catch {
    if (type === 'heic' && metadata.compression === 'hevc') {
      return unreadable('the HEIC image is HEVC-coded and this image library has no HEVC decoder');
    }
    return unreadable(`the ${type} image data could not be decoded`);
  }
  if (output.data.length > limits.maxBytes) {
    return tooLarge(`the re-encoded photo is ${output.data.length} bytes; the limit is ${limits.maxBytes}`);
  }
  return {
    ok: true,
    mimeType: format === 'png' ? 'image/png' : 'image/jpeg',
    bytes: output.data,
    width: output.info.width,
    height: output.info.height,
    removed: metadataOf(bytes, type, metadata),
  };
}
