import { describe, expect, it } from '@jest/globals';
import { compilePolicyBundle } from './domain/loader.js';
import { prepareMedia } from './media-preparation.js';

function policyWithVideos(allow: boolean) {
  const yaml = `apiVersion: sluice.policy/v1
name: test
purpose: frontline-updates
lawfulBasis: consent
source: workplace.post
destination: whatsapp
recipients:
  consent: { purpose: frontline-updates }
fields:
  - { path: message, category: user.content, transform: none }
media:
  photos: { allow: true, types: [jpeg, png] }
  videos: { allow: ${allow}, types: [mp4] }
delivery: { type: text, template: "{message}" }
`;
  return compilePolicyBundle([{ name: 'test.policy.yaml', bytes: Buffer.from(yaml) }]).policies[0]!;
}

describe('prepareMedia: videos', () => {
  const sourceless = { attachments: { data: [{ type: 'video_inline', media: { image: { src: 'data:image/png;base64,AAAA' } } }] } };

  it('refuses a video the policy does not allow before fetching it, and one without its source as unreadable', async () => {
    const fetched: string[] = [];
    const fetchRemote = async (url: string) => {
      fetched.push(url);
      return { ok: false as const, reason: 'media.unreadable' as const };
    };
    const withSource = { attachments: { data: [{ type: 'video_autoplay', media: { source: 'https://video.example/v.mp4' } }] } };
    expect((await prepareMedia(policyWithVideos(false), withSource, { fetchRemote })).outcomes).toEqual([
      { path: 'attachments.data.0.media.source', ok: false, reason: 'media.type_not_allowed' },
    ]);
    expect((await prepareMedia(policyWithVideos(false), sourceless, { fetchRemote })).outcomes).toEqual([{ path: 'attachments.data.0', ok: false, reason: 'media.type_not_allowed' }]);
    expect((await prepareMedia(policyWithVideos(true), sourceless, { fetchRemote })).outcomes).toEqual([{ path: 'attachments.data.0', ok: false, reason: 'media.unreadable' }]);
    expect(fetched).toEqual([]);
  });
});
