import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { evaluateShare, mediaAttachmentsOf, type ConsentState } from '../domain/evaluator.js';
import { PolicyLoadError, readPolicyFiles, type PolicySourceFile } from '../domain/loader.js';
import { prepareMedia } from '../media-preparation.js';
import { privacyDiff } from './policy-diff.js';
import { formatProblems, policyFilesAtRevision, tryCompile } from './policy-files.js';
import { messageText, runPolicyTests } from './policy-tests.js';

export const POLICY_USAGE = `  policy lint                              check every policy: schema and semantics (exit 1 on a problem)
  policy test                              run the cases in <dir>/tests/*.yaml (exit 1 on a failure)
  policy diff --base <git-ref>             Markdown privacy diff of the policies against a revision
  policy explain <policy> --post <file.json> [--grant type:id,...] [--to waId,...]
                                           what of this post would cross, and why
  Every policy verb takes --dir <folder> (default POLICIES_DIR, else policies).`;

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** `sluice policy <verb>`: returns the exit code. Needs no database and no keys. */
export async function runPolicyCommand(verb: string | undefined, args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { dir: { type: 'string' }, base: { type: 'string' }, post: { type: 'string' }, grant: { type: 'string' }, to: { type: 'string' } },
  });
  const dir = values.dir ?? env.POLICIES_DIR ?? 'policies';
  let loaded: ReturnType<typeof tryCompile>;
  try {
    loaded = tryCompile(readPolicyFiles(dir));
  } catch (error) {
    if (!(error instanceof PolicyLoadError)) throw error;
    loaded = { problems: error.problems };
  }

  switch (verb) {
    case 'lint': {
      if ('problems' in loaded) {
        io.err.write(`${formatProblems(dir, loaded.problems)}\n${loaded.problems.length} problem(s)\n`);
        return 1;
      }
      if (loaded.bundle.policies.length === 0) {
        io.err.write(`${dir}: no *.policy.yaml files\n`);
        return 1;
      }
      io.out.write(`${loaded.bundle.policies.length} policy file(s) OK, bundle ${loaded.bundle.hash}\n`);
      return 0;
    }
    case 'test': {
      if ('problems' in loaded) {
        io.err.write(`${formatProblems(dir, loaded.problems)}\nthe policies do not load: run sluice policy lint\n`);
        return 1;
      }
      const results = await runPolicyTests(dir, loaded.bundle);
      const failed = results.filter((r) => r.failures.length > 0);
      for (const result of results) {
        io.out.write(`${result.failures.length === 0 ? 'ok  ' : 'FAIL'} ${result.file}${result.line > 0 ? `:${result.line}` : ''}: ${result.name}\n`);
        for (const failure of result.failures) io.out.write(`${failure.replace(/^/gm, '      ')}\n`);
      }
      io.out.write(`${results.length - failed.length} passed, ${failed.length} failed\n`);
      return failed.length > 0 ? 1 : 0;
    }
    case 'diff': {
      if (!values.base) {
        io.err.write('policy diff needs --base <git-ref>\n');
        return 2;
      }
      if ('problems' in loaded) {
        io.err.write(`${formatProblems(dir, loaded.problems)}\nthe policies do not load: run sluice policy lint\n`);
        return 1;
      }
      let baseFiles: PolicySourceFile[];
      try {
        baseFiles = policyFilesAtRevision(dir, values.base);
      } catch (error) {
        const detail = (error as { stderr?: Buffer }).stderr?.toString('utf8').trim() || (error as Error).message;
        io.err.write(`cannot read ${dir} at ${values.base}: ${detail}\n`);
        return 2;
      }
      const base = baseFiles.length > 0 ? tryCompile(baseFiles) : undefined;
      const baseBundle = base && 'bundle' in base ? base.bundle : undefined;
      const baseProblems = base && 'problems' in base ? base.problems.map((p) => p.message) : [];
      io.out.write(privacyDiff(baseBundle, loaded.bundle, values.base, baseProblems));
      return 0;
    }
    case 'explain':
      return explain(positionals[0], values, loaded, io);
    default:
      io.err.write(`usage: sluice <command>\n${POLICY_USAGE}\n`);
      return 2;
  }
}

async function explain(
  name: string | undefined,
  values: { post?: string; grant?: string; to?: string },
  loaded: ReturnType<typeof tryCompile>,
  io: Io,
): Promise<number> {
  if (!name || !values.post) {
    io.err.write('usage: sluice policy explain <policy> --post <file.json> [--grant type:id,...] [--to waId,...]\n');
    return 2;
  }
  if ('problems' in loaded) {
    io.err.write('the policies do not load: run sluice policy lint\n');
    return 1;
  }
  const policy = loaded.bundle.policies.find((p) => p.name === name);
  if (!policy) {
    io.err.write(`no policy named ${name} (there are: ${loaded.bundle.policies.map((p) => p.name).join(', ')})\n`);
    return 2;
  }
  let post: Record<string, unknown>;
  try {
    post = JSON.parse(readFileSync(values.post, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    io.err.write(`${values.post}: not JSON (${error.message})\n`);
    return 2;
  }
  const recipients = (values.to ?? '31600000000').split(',').map((waId) => ({ waId: waId.trim() }));
  const granted = new Set((values.grant ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  const everyone = values.grant === undefined;
  const consents = (subject: { type: string; id: string }): ConsentState => (everyone || granted.has(`${subject.type}:${subject.id}`) ? 'granted' : 'none');
  const media = (await prepareMedia(policy, post)).outcomes;
  const decision = evaluateShare(policy, loaded.bundle.hash, { purpose: policy.purpose, source: policy.source, destination: policy.destination, post, recipients, media }, {
    consents,
    keyedHash: (value) => `h_${createHmac('sha256', 'sluice policy explain').update(value).digest('base64url').slice(0, 22)}`,
  });

  const lines = [
    `policy ${policy.name} (${policy.file}), purpose ${policy.purpose}, lawful basis ${policy.lawfulBasis}`,
    everyone ? 'consents: assumed granted for everyone (pass --grant type:id,... to choose)' : `consents granted: ${[...granted].join(', ') || 'none'}`,
    `decision: ${decision.status}${decision.reasons.length ? ` (${decision.reasons.join(', ')})` : ''}`,
    '',
    'crosses:',
    ...decision.crossing.fields.map((f) => `  ${f.path}  category ${f.category}, transform ${f.transform}${f.subject ? `, subject ${f.subject}` : ''}`),
    'dropped:',
    ...decision.crossing.dropped.map((d) => `  ${d.path}  ${d.reason}`),
    'redacted:',
    ...decision.crossing.redactions.map((r) => `  ${r.path}  ${r.count} x ${r.recogniser}`),
    'recipients:',
    ...decision.recipients.map((r) => `  ${r.waId}  ${r.decision}${r.reasons.length ? ` (${r.reasons.join(', ')})` : ''}`),
    '',
    `message (${decision.outbound?.type ?? 'nothing is sent'}):`,
    ...(messageText(decision) ?? '').split('\n').map((l) => `  | ${l}`),
  ];
  // The gateway fetches media by URL (from allow-listed hosts); explain reads no network.
  const unread = new Set(media.filter((m) => !m.ok && m.reason === 'media.unreadable').map((m) => m.path));
  const remote = mediaAttachmentsOf(post).filter((a) => a.src !== undefined && !a.src.startsWith('data:') && unread.has(a.path));
  if (remote.length > 0) {
    lines.push('', ...remote.map((a) => `note: ${a.path} is a URL, which explain does not fetch: decided here as media.unreadable; inline it as a data: URL to see what of it would cross`));
  }
  io.out.write(`${lines.join('\n')}\n`);
  return 0;
}
