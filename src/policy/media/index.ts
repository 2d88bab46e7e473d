import { createHash } from 'node:crypto';
import { minimisePhoto } from './photo.js';
import { isPhotoType, type MediaType, type PhotoType, sniffMediaType, sniffUnsupportedMediaType, type VideoType } from './sniff.js';
import { minimiseVideo } from './video.js';

/**
 * Media minimisation: what may cross to WhatsApp of a photo or a video is its picture and sound,
 * never the metadata a camera or an app attached. Plain TypeScript over sharp (libvips) for photos
 * and a box rewriter for MP4/QuickTime; pure, no I/O besides the decoder, nothing logged.
 */

export { sniffMediaType };
export type { MediaType, PhotoType, VideoType };

export interface MediaRules {
  photos: { allow: boolean; types: PhotoType[]; maxBytes: number; maxPixels: number; maxDimension: number };
  videos: { allow: boolean; types: VideoType[]; maxBytes: number };
}

export type MediaReason = 'media.type_not_allowed' | 'media.too_large' | 'media.unreadable';

export type MinimisedMedia =
  | {
      ok: true;
      kind: 'photo' | 'video';
      /** The type sniffed from the input; mimeType says what the output is (a HEIC leaves as JPEG). */
      type: MediaType;
      mimeType: string;
      bytes: Buffer;
      /** Hex SHA-256 of the output bytes. */
      sha256: string;
      width?: number;
      height?: number;
      /** What the input carried and the output does not: photo metadata kinds, or MP4 box names. */
      removed: string[];
    }
  | { ok: false; reason: MediaReason; detail: string };

const VIDEO_MIME_TYPES: Record<VideoType, string> = { mp4: 'video/mp4', quicktime: 'video/quicktime' };

function refuse(reason: MediaReason, detail: string): MinimisedMedia {
  return { ok: false, reason, detail };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function tooLarge(size: number, limit: number): MinimisedMedia {
  return refuse('media.too_large', `the media is ${size} bytes; the limit is ${limit}`);
}

async function minimise(bytes: Buffer, rules: MediaRules): Promise<MinimisedMedia> {
  // Before the type is known, no input may exceed the larger of the two limits.
  const largestAllowed = Math.max(rules.photos.maxBytes, rules.videos.maxBytes);
  if (bytes.length > largestAllowed) return tooLarge(bytes.length, largestAllowed);
  const type = sniffMediaType(bytes);
  if (!type) {
    const unsupported = sniffUnsupportedMediaType(bytes);
    if (unsupported) return refuse('media.type_not_allowed', `${unsupported} media are not allowed: sluice minimises JPEG, PNG, WebP, HEIC, MP4 and QuickTime only`);
    return refuse('media.unreadable', 'the bytes are not a JPEG, PNG, WebP, HEIC, MP4 or QuickTime file');
  }

  if (isPhotoType(type)) {
    if (!rules.photos.allow || !rules.photos.types.includes(type)) return refuse('media.type_not_allowed', `${type} photos are not allowed`);
    if (bytes.length > rules.photos.maxBytes) return tooLarge(bytes.length, rules.photos.maxBytes);
    const photo = await minimisePhoto(bytes, type, rules.photos);
    if (!photo.ok) return photo;
    const { mimeType, width, height, removed } = photo;
    return { ok: true, kind: 'photo', type, mimeType, bytes: photo.bytes, sha256: sha256(photo.bytes), width, height, removed };
  }

  if (!rules.videos.allow || !rules.videos.types.includes(type)) return refuse('media.type_not_allowed', `${type} videos are not allowed`);
  if (bytes.length > rules.videos.maxBytes) return tooLarge(bytes.length, rules.videos.maxBytes);
  const video = minimiseVideo(bytes);
  if (!video.ok) return video;
  const { width, height, removed } = video;
  return { ok: true, kind: 'video', type, mimeType: VIDEO_MIME_TYPES[type], bytes: video.bytes, sha256: sha256(video.bytes), width, height, removed };
}

/** Never throws: any decode/parse error is { ok:false, reason:'media.unreadable' }. */
export async function minimiseMedia(bytes: Buffer, rules: MediaRules): Promise<MinimisedMedia> {
  try {
    return await minimise(bytes, rules);
  } catch {
    return refuse('media.unreadable', 'the media could not be processed');
  }
}
