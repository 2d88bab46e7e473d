/**
 * Decisions per second per core (this runs on one thread): a typical text post with every
 * recogniser on, and a post with one 3 MB photo. Each is set against a baseline measured in the
 * same run: the same decision with the allow-list alone (no recognisers), and decoding the photo
 * without minimising it. Run with `npm run bench:policy`.
 */
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { evaluateShare, type EvaluationTools, type ShareInput } from '../src/policy/domain/evaluator.js';
import { compilePolicyBundle, readPolicyFiles } from '../src/policy/domain/loader.js';
import { prepareMedia } from '../src/policy/media-preparation.js';
import { machine, measure, table } from './measure.js';

const POLICIES = fileURLToPath(new URL('../../policies', import.meta.url));

const files = readPolicyFiles(POLICIES);
const bundle = compilePolicyBundle(files);
const policy = bundle.select('frontline-updates', 'workplace.post', 'whatsapp')!;
// The same policy with the message crossing as is: what the recognisers cost on top.
const allowListOnly = compilePolicyBundle(files.map((f) => ({ name: f.name, bytes: Buffer.from(f.bytes.toString('utf8').replace('transform: redact-pii', 'transform: none').replace(/\nfreeText:[\s\S]*?\n(?=\S)/, '\n')) })));
const baselinePolicy = allowListOnly.select('frontline-updates', 'workplace.post', 'whatsapp')!;

const AUTHOR = '100041234567890';
const message =
  '🎉 Pieter Jansen opened the new warehouse in Utrecht-Noord today! Questions about the roster? ' +
  'Call the shift desk on 030-123 4567 or mail planning@example.nl. Expenses go to NL91 ABNA 0417 1643 00, ' +
  'order 2026-1184 arrives Thursday 28-11 at 09:30. Thanks to everyone who helped on the night shift.';
const textInput: ShareInput = {
  purpose: 'frontline-updates',
  source: 'workplace.post',
  destination: 'whatsapp',
  post: {
    id: '1234567890_987654321',
    message,
    from: { id: AUTHOR, name: 'Anna de Vries' },
    created_time: '2026-11-20T09:12:44+0000',
    message_tags: [{ id: '100049999', name: 'Pieter Jansen', type: 'user', offset: 3, length: 13 }],
    place: { name: 'Warehouse Utrecht-Noord', location: { latitude: 52.09, longitude: 5.12 } },
    permalink_url: 'https://acme.workplace.com/groups/1/permalink/987654321/',
  },
  recipients: [{ waId: '31612345678' }, { waId: '31687654321' }, { waId: '31600000000' }],
};
const tools: EvaluationTools = { consents: (subject) => (subject.id === '100049999' ? 'none' : 'granted') };

/** A 3 MB JPEG with EXIF and GPS, from noise (noise does not compress, so the bytes stay large). */
async function photo(): Promise<Buffer> {
  const width = 2000;
  const height = 1500;
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 97 })
    .withExif({ IFD0: { Make: 'Bench', Model: 'Camera' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '52/1 5/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '5/1 7/1 12/1' } })
    .toBuffer();
}

async function main(): Promise<void> {
  // One libvips thread: the photo figures are per core too.
  sharp.concurrency(1);
  const text = await measure('text post, allow-list only (baseline)', () => evaluateShare(baselinePolicy, allowListOnly.hash, textInput, tools));
  const full = await measure('text post, all recognisers', () => evaluateShare(policy, bundle.hash, textInput, tools));

  const jpeg = await photo();
  const photoPost = { ...textInput.post, attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${jpeg.toString('base64')}` } } }] } };
  const decodeOnly = await measure('3 MB photo: decode only (baseline)', () => sharp(jpeg).raw().toBuffer(), { rounds: 5, roundMs: 2000 });
  const withPhoto = await measure('post with a 3 MB photo: minimise + decide', async () => {
    const prepared = await prepareMedia(policy, photoPost);
    return evaluateShare(policy, bundle.hash, { ...textInput, post: photoPost, media: prepared.outcomes }, tools);
  }, { rounds: 5, roundMs: 2000 });

  const check = evaluateShare(policy, bundle.hash, textInput, tools);
  console.log(`# policy decisions — ${new Date().toISOString().slice(0, 10)}, ${machine()}`);
  console.log(`photo: ${(jpeg.length / 1e6).toFixed(2)} MB JPEG 2000x1500 with EXIF GPS; sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}, concurrency ${sharp.concurrency()}`);
  console.log(`text decision: ${check.status}, redactions ${check.crossing.redactions.map((r) => `${r.recogniser}=${r.count}`).join(' ')}\n`);
  console.log(table([text, full], text));
  console.log();
  console.log(table([decodeOnly, withPhoto], decodeOnly));
  console.log(`\ntarget: >= 20,000 text decisions/s on one core: ${full.perSecond >= 20_000 ? 'met' : 'NOT met'} (${Math.round(full.perSecond).toLocaleString('en-US')})`);
}

await main();
