import { allMatches, type Recogniser, type Span } from './context.js';

/**
 * Query and fragment parameters whose value is a secret, compared in lowercase after URL decoding
 * and without dashes and underscores ("api_key", "api-key", "apiKey" and "apikey" alike).
 */
const SECRET_PARAMETERS: ReadonlySet<string> = new Set([
  'token', 'accesstoken', 'idtoken', 'refreshtoken', 'authtoken', 'privatetoken', 'apitoken', 'oauthtoken', 'jwt', 'bearer',
  'apikey', 'key', 'accesskey', 'secretkey', 'privatekey', 'secret', 'clientsecret', 'apisecret', 'appsecret', 'consumersecret',
  'password', 'passwd', 'pwd', 'pass', 'passcode', 'otp', 'sig', 'signature', 'oauthsignature', 'auth', 'credential', 'credentials',
  'session', 'sessionid', 'sid', 'jsessionid', 'phpsessid', 'code',
  'xamzsignature', 'xamzcredential', 'xamzsecuritytoken', 'xgoogsignature', 'xgoogcredential',
]);

/** A user name alone is a credential when it looks like a token (e.g. https://ghp_…@github.com/…). */
const TOKEN_AS_USER = /^[\w-]{20,}$/;

/**
 * A URL with a scheme, any scheme ("rtsp://admin:…@camera", "postgres://app:…@db",
 * "mongodb+srv://…"), or starting with "www.", up to the next space or quote. Not inside a word,
 * but after an underscore: "_https://…_" is in Markdown italics. A scheme is read from its start
 * only, and scheme names are short: that keeps the scan linear on long dotted runs.
 */
const URL_CANDIDATE = /(?<![\p{L}\p{N}])(?:(?<![.+-])[a-z][a-z\d+.-]{0,31}:\/\/|www\.)[^\s<>"'`]+/giu;
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
      return equals > 0 && equals < parameter.length - 1 && isSecretParameter(decodedName(parameter.slice(0, equals)));
    });
}

/** Also the name of an array, as PHP and Rails write them: "token[]", "token[0]". */
function isSecretParameter(name: string): boolean {
  const bracket = name.indexOf('[');
  return SECRET_PARAMETERS.has((bracket < 0 ? name : name.slice(0, bracket)).replace(/[-_]/g, ''));
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
