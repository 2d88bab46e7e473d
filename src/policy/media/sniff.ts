/**
 * Media type detection from content alone. A file name or a declared MIME type is whatever the
 * sender chose to call the file; the bytes are what a decoder will actually read.
 */

export type PhotoType = 'jpeg' | 'png' | 'heic' | 'webp';
export type VideoType = 'mp4' | 'quicktime';
export type MediaType = PhotoType | VideoType;

const PHOTO_TYPES: ReadonlySet<MediaType> = new Set<PhotoType>(['jpeg', 'png', 'heic', 'webp']);

export function isPhotoType(type: MediaType): type is PhotoType {
  return PHOTO_TYPES.has(type);
}

const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * HEIF still-image brands (ISO/IEC 23008-12). AVIF is the same container with AV1-coded images
 * and is decoded and re-encoded the same way, so it counts as 'heic' too.
 */
const HEIF_IMAGE_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'mif1', 'mif2', 'avif']);
const MP4_BRANDS = new Set(['isom', 'iso2', 'iso3', 'iso4', 'iso5', 'iso6', 'mp41', 'mp42', 'avc1', 'M4V ']);
const QUICKTIME_BRAND = 'qt  ';
/** QuickTime files written before ftyp existed open straight with one of these atoms. */
const LEGACY_QUICKTIME_FIRST_ATOMS = new Set(['moov', 'mdat', 'wide', 'free', 'skip', 'pnot']);

function startsWith(bytes: Uint8Array, signature: readonly number[]): boolean {
  return bytes.length >= signature.length && signature.every((byte, i) => bytes[i] === byte);
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

function typeOfBrand(brand: string): MediaType | undefined {
  if (HEIF_IMAGE_BRANDS.has(brand)) return 'heic';
  if (brand === QUICKTIME_BRAND) return 'quicktime';
  if (MP4_BRANDS.has(brand)) return 'mp4';
  return undefined;
}

/**
 * An ISO base media file opens with an ftyp box: major brand, minor version, compatible brands.
 * Older QuickTime files have no ftyp and open with a movie, media data or padding atom.
 */
function sniffBoxFile(bytes: Uint8Array): MediaType | undefined {
  if (bytes.length < 16) return undefined;
  const declaredSize = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const firstBox = ascii(bytes, 4, 8);
  if (LEGACY_QUICKTIME_FIRST_ATOMS.has(firstBox)) return declaredSize === 1 || declaredSize >= 8 ? 'quicktime' : undefined;
  if (firstBox !== 'ftyp' || declaredSize < 16) return undefined;
  const major = typeOfBrand(ascii(bytes, 8, 12));
  if (major) return major;
  const end = Math.min(declaredSize, bytes.length);
  for (let at = 16; at + 4 <= end; at += 4) {
    const compatible = typeOfBrand(ascii(bytes, at, at + 4));
    if (compatible) return compatible;
  }
  return undefined;
}

/** Sniffs the type from the bytes (magic numbers / ftyp brands), never from a name; undefined when unknown. */
export function sniffMediaType(bytes: Uint8Array): MediaType | undefined {
  if (startsWith(bytes, JPEG_SIGNATURE)) return 'jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  return sniffBoxFile(bytes);
}

const BMP_INFO_HEADER_SIZES: ReadonlySet<number> = new Set([12, 40, 52, 56, 64, 108, 124]);

/**
 * Image and video formats sluice knows but does not minimise (so no policy can allow them), by
 * their opening bytes: a sender who sent one is told its type is not allowed, not that the bytes
 * cannot be read. Undefined for anything else.
 */
export function sniffUnsupportedMediaType(bytes: Uint8Array): string | undefined {
  const opening = ascii(bytes, 0, Math.min(bytes.length, 12));
  if (opening.startsWith('GIF87a') || opening.startsWith('GIF89a')) return 'gif';
  // A BMP's info header after its 14-byte file header opens with its own size, one of a few.
  if (opening.startsWith('BM') && bytes.length >= 18 && BMP_INFO_HEADER_SIZES.has(bytes[14]! | (bytes[15]! << 8) | (bytes[16]! << 16) | (bytes[17]! << 24))) return 'bmp';
  if (opening.startsWith('II*\0') || opening.startsWith('MM\0*')) return 'tiff';
  if (startsWith(bytes, [0x1a, 0x45, 0xdf, 0xa3])) return 'webm';
  if (opening.startsWith('RIFF') && opening.slice(8, 12) === 'AVI ') return 'avi';
  if (bytes.length >= 12 && ascii(bytes, 4, 8) === 'ftyp') return `ISO media (${ascii(bytes, 8, 12).trim() || 'no brand'})`;
  // SVG is text: its root element within the first kilobyte, after any XML declaration, comments or doctype.
  if (/^(?:\uFEFF)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>]/i.test(Buffer.from(bytes.subarray(0, 1024)).toString('latin1'))) return 'svg';
  return undefined;
}
