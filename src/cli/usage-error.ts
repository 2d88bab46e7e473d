import { ConfigError } from '../platform/config/config.js';
import { PolicyLoadError } from '../policy/domain/loader.js';

/**
 * What the person running the command got wrong, in one line (exit 2, as for every usage
 * error): the settings, the policies, an option, a file named. Anything else is a failure of
 * sluice's own and keeps its stack (exit 1).
 */
export function usageError(error: unknown): string | undefined {
  if (error instanceof ConfigError) return error.message;
  if (error instanceof PolicyLoadError) return error.message;
  const { code, path } = error as { code?: unknown; path?: unknown };
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return `${(error as Error).message.split('. ')[0]} (npx sluice lists every command and its options)`;
  if (typeof code === 'string' && typeof path === 'string' && ['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES'].includes(code)) return `${path}: ${FILE_ERRORS[code]}`;
  return undefined;
}

const FILE_ERRORS: Record<string, string> = { ENOENT: 'no such file or folder', EISDIR: 'a folder, not a file', ENOTDIR: 'a path through something that is not a folder', EACCES: 'permission denied' };
