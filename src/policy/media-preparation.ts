import type { MediaOutcome } from './domain/evaluator.js';
import { MAX_MEDIA_PER_SHARE, mediaAttachmentsOf } from './domain/evaluator.js';
import type { CompiledPolicy } from './domain/policy.js';
import type { FetchedMedia } from './media-fetcher.js';
import { minimiseMedia, type MediaRules } from './media/index.js';

export interface PreparedMedia {
  /** One per media attachment, in the post's order: what the evaluator decides on. */
  outcomes: MediaOutcome[];
  /** The minimised bytes of each attachment that may cross, by path. */
  minimised: Map<string, { bytes: Buffer; mimeType: string; sha256: string }>;
}

/**
 * Decodes (inline data: URLs) or fetches (https URLs, when a fetcher is given) and minimises the
 * post's photos and videos as the policy's media rules say, before the decision. Media the
 * policy does not allow are never decoded or fetched, nor are any of a post with more media than
 * a share can carry: a post could otherwise name thousands of URLs, each fetched and decoded
 * before the decision. Nothing here throws for bad media: each attachment gets an outcome the
 * evaluator turns into a reason.
 */
export async function prepareMedia(
  policy: CompiledPolicy,
  post: Record<string, unknown>,
  options: { fetchRemote?: (url: string, maxBytes: number) => Promise<FetchedMedia> } = {},
): Promise<PreparedMedia> {
  const outcomes: MediaOutcome[] = [];
  const minimised: PreparedMedia['minimised'] = new Map();
  const rules: MediaRules = {
    photos: { allow: policy.media.photos.allow, types: policy.media.photos.types, maxBytes: policy.limits.mediaBytes, maxPixels: policy.media.photos.maxPixels, maxDimension: policy.media.photos.maxDimension },
    videos: { allow: policy.media.videos.allow, types: policy.media.videos.types, maxBytes: policy.limits.mediaBytes },
  };
  const attachments = mediaAttachmentsOf(post);
  if (attachments.length > MAX_MEDIA_PER_SHARE) {
    return { outcomes: attachments.map(({ path }) => ({ path, ok: false, reason: 'limits.too_many_media' })), minimised };
  }
  for (const attachment of attachments) {
    const { path, src } = attachment;
    // What the post declares decides only a refusal (the bytes, sniffed, decide what is allowed).
    if ((!rules.photos.allow && !rules.videos.allow) || (attachment.declared === 'video' && !rules.videos.allow)) {
      outcomes.push({ path, ok: false, reason: 'media.type_not_allowed' });
      continue;
    }
    const decoded =
      src === undefined
        ? ({ ok: false, reason: 'media.unreadable' } as const)
        : src.startsWith('data:')
          ? decodeDataUrl(src, policy.limits.mediaBytes)
          : options.fetchRemote
            ? await options.fetchRemote(src, policy.limits.mediaBytes)
            : ({ ok: false, reason: 'media.unreadable' } as const);
    if (!decoded.ok) {
      outcomes.push({ path, ok: false, reason: decoded.reason });
      continue;
    }
    const result = await minimiseMedia(decoded.bytes, rules);
    if (!result.ok) {
      outcomes.push({ path, ok: false, reason: result.reason });
      continue;
    }
    outcomes.push({ path, ok: true, kind: result.kind, type: result.type, mimeType: result.mimeType, sha256: result.sha256, bytes: result.bytes.length, removed: result.removed });
    minimised.set(path, { bytes: result.bytes, mimeType: result.mimeType, sha256: result.sha256 });
  }
  return { outcomes, minimised };
}

const DATA_URL = /^data:([a-z0-9.+/-]*)(;[a-z0-9-]+=[^;,]*)*;base64,/i;

/**
 * Inline media as `data:<type>;base64,...`. The declared type is ignored (the bytes are sniffed
 * later); the size is checked on the encoded length before anything is decoded.
 */
export function decodeDataUrl(src: string, maxBytes: number): { ok: true; bytes: Buffer } | { ok: false; reason: 'media.too_large' | 'media.unreadable' } {
  const head = DATA_URL.exec(src.slice(0, 256));
  if (!head) return { ok: false, reason: 'media.unreadable' };
  const payload = src.slice(head[0].length);
  if (Math.floor((payload.length * 3) / 4) > maxBytes + 2) return { ok: false, reason: 'media.too_large' };
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(payload) || payload.length % 4 !== 0) return { ok: false, reason: 'media.unreadable' };
  const bytes = Buffer.from(payload, 'base64');
  if (bytes.length > maxBytes) return { ok: false, reason: 'media.too_large' };
  return { ok: true, bytes };
}
