import { allMatches, type Recogniser, type Span } from './context.js';

/** Query and fragment parameters whose value is a secret (compared in lowercase, after URL decoding). */
const SECRET_PARAMETERS: ReadonlySet<string> = new Set([
  'token', 'access_token', 'accesstoken', 'id_token', 'refresh_token', 'auth_token', 'authtoken', 'private_token', 'jwt',
  'api_key', 'apikey', 'api-key', 'key', 'secret', 'client_secret', 'password', 'passwd', 'pwd', 'pass', 'otp',
  'sig', 'signature', 'auth', 'session', 'sessionid', 'session_id', 'sid', 'jsessionid', 'code',
  'x-amz-signature', 'x-amz-credential', 'x-amz-security-token', 'x-goog-signature', 'x-goog-credential',
]);

/** A user name alone is a credential when it looks like a token (e.g. https://ghp_…@github.com/…). */
const TOKEN_AS_USER = /^[\w-]{20,}$/;

/** A URL with a scheme, or starting with "www.", up to the next space or quote. */
const URL_CANDIDATE = /(?<![\p{L}\p{N}_])(?:(?:https?|s?ftps?|wss?):\/\/|www\.)[^\s<>"'`]+/giu;
const TRAILING_PUNCTUATION = '.,;:!?\'"*»';

/** URLs that carry a password, a token user name or a secret query/fragment parameter; the whole URL is the finding. */
export const credentialUrlRecogniser: Recogniser = {
  minDigits: 0,
  find(text) {
    if (!text.includes('://') && !text.includes('www.')) return [];
    const spans: Span[] = [];
    for (const match of allMatches(URL_CANDIDATE, text)) {
      const url = withoutTrailingPunctuation(match[0]);
      if (carriesCredentials(url)) spans.push({ start: match.index, end: match.index + url.length });
    }
    return spans;
  },
};

/** Drops sentence punctuation after a URL, and closing brackets that have no opening one inside it. */
function withoutTrailingPunctuation(url: string): string {
  let end = url.length;
  while (end > 0) {
    const last = url[end - 1]!;
    if (TRAILING_PUNCTUATION.includes(last)) end--;
    else if (last === ')' && count(url, '(', end) < count(url, ')', end)) end--;
    else if (last === ']' && count(url, '[', end) < count(url, ']', end)) end--;
    else break;
  }
  return url.slice(0, end);
}

function count(text: string, char: string, end: number): number {
  let n = 0;
  for (let i = text.indexOf(char); i >= 0 && i < end; i = text.indexOf(char, i + 1)) n++;
  return n;
}

function carriesCredentials(url: string): boolean {
  const afterScheme = url.indexOf('://');
  const authorityStart = afterScheme < 0 ? 0 : afterScheme + 3;
  const authorityEnd = firstIndexOf(url, '/?#', authorityStart);
  const at = url.lastIndexOf('@', authorityEnd - 1);
  if (at >= authorityStart) {
    const userInfo = url.slice(authorityStart, at);
    const colon = userInfo.indexOf(':');
    if (colon >= 0 ? colon < userInfo.length - 1 : TOKEN_AS_USER.test(userInfo)) return true;
  }
  if (authorityEnd >= url.length) return false;
  // Parameters live in the query and the fragment (OAuth implicit flow), also after ";" (jsessionid).
  return url
    .slice(authorityEnd)
    .split(/[?#&;]/)
    .some((parameter) => {
      const equals = parameter.indexOf('=');
      return equals > 0 && equals < parameter.length - 1 && SECRET_PARAMETERS.has(decodedName(parameter.slice(0, equals)));
    });
}

function firstIndexOf(text: string, chars: string, from: number): number {
  for (let i = from; i < text.length; i++) if (chars.includes(text[i]!)) return i;
  return text.length;
}

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name).toLowerCase();
  } catch {
    return name.toLowerCase();
  }
}
