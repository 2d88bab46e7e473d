import { execFileSync } from 'node:child_process';
import { relative, resolve } from 'node:path';
import { compilePolicyBundle, POLICY_FILE_SUFFIX, PolicyLoadError, type PolicyBundle, type PolicyProblem, type PolicySourceFile } from '../domain/loader.js';

/** Formats loader problems the way editors and CI annotate them: file:line:column message. */
export function formatProblems(dir: string, problems: PolicyProblem[]): string {
  return problems.map((p) => `${p.line > 0 ? `${resolve(dir, p.file)}:${p.line}:${p.column}` : p.file}: ${p.message}`).join('\n');
}

/** The policy bundle, or the problems that keep it from loading. */
export function tryCompile(files: PolicySourceFile[]): { bundle: PolicyBundle } | { problems: PolicyProblem[] } {
  try {
    return { bundle: compilePolicyBundle(files) };
  } catch (error) {
    if (error instanceof PolicyLoadError) return { problems: error.problems };
    throw error;
  }
}

/**
 * The policy files of `dir` as they were at a git revision (for the privacy diff of a pull
 * request): none if the folder did not exist there. Throws, with git's message, if the revision
 * is not a commit of the repository.
 */
export function policyFilesAtRevision(dir: string, revision: string): PolicySourceFile[] {
  const gitIn = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  const top = gitIn(resolve(dir), 'rev-parse', '--show-toplevel').toString('utf8').trim();
  // From the top level: in a subfolder, ls-tree prints names relative to it.
  const git = (...args: string[]) => gitIn(top, ...args);
  let commit: string;
  try {
    commit = git('rev-parse', '--verify', '--quiet', '--end-of-options', `${revision}^{commit}`).toString('utf8').trim();
  } catch {
    throw new Error(`${revision} is not a commit of the repository at ${top}`);
  }
  const folder = relative(top, resolve(dir)).split('\\').join('/');
  const prefix = folder === '' ? '' : `${folder}/`;
  // The first pull request that adds policies, or moves their folder, compares with none.
  const tree = git('ls-tree', '-z', commit, '--', folder === '' ? '.' : folder).toString('utf8').split('\0')[0] ?? '';
  if (folder !== '' && !/^\d+ tree /.test(tree)) return [];
  // NUL-separated, so that a name is not quoted (a non-ASCII one would be "frontline-\303\274...");
  // files only (a folder or a link named *.policy.yaml is not one).
  const listing = git('ls-tree', '-z', `${commit}:${folder}`).toString('utf8');
  return listing
    .split('\0')
    .map((line) => /^100(?:644|755) blob [0-9a-f]+\t(.*)$/s.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name.endsWith(POLICY_FILE_SUFFIX))
    .sort()
    .map((name) => ({ name, bytes: git('show', `${commit}:${prefix}${name}`) }));
}
