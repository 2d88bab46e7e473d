import { execFileSync } from 'node:child_process';
import { posix, relative, resolve } from 'node:path';
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
  // The first pull request that adds policies, or moves their folder, compares with none.
  const tree = git('ls-tree', '-z', commit, '--', folder === '' ? '.' : folder).toString('utf8').split('\0')[0] ?? '';
  if (folder !== '' && !/^\d+ tree /.test(tree)) return [];
  // NUL-separated, so that a name is not quoted (a non-ASCII one would be "frontline-\303\274...");
  // files and links to files (a folder named *.policy.yaml is not one).
  const listing = git('ls-tree', '-z', `${commit}:${folder}`).toString('utf8');
  const files: PolicySourceFile[] = [];
  for (const line of listing.split('\0')) {
    const [, mode, object, name] = /^(100644|100755|120000) blob ([0-9a-f]+)\t(.*)$/s.exec(line) ?? [];
    if (!name?.endsWith(POLICY_FILE_SUFFIX)) continue;
    if (mode !== '120000') {
      files.push({ name, bytes: git('cat-file', 'blob', object!) });
      continue;
    }
    // A link is read as the server reads it, through to the file it names, in the same commit. One
    // to nothing there is left out, as the server would leave it; so is one out of the repository,
    // whose content at that revision git cannot tell.
    const link = git('cat-file', 'blob', object!).toString('utf8');
    const target = posix.normalize(posix.join(folder, link));
    if (posix.isAbsolute(link) || target === '..' || target.startsWith('../')) continue;
    try {
      files.push({ name, bytes: git('show', `${commit}:${target}`) });
    } catch {
      continue;
    }
  }
  return files.sort((a, b) => (a.name < b.name ? -1 : 1));
}
