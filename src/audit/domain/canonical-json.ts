/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes an audit entry is hashed as.
 *
 * Numbers use the ECMAScript serialisation (which RFC 8785 adopts), object keys are sorted by
 * UTF-16 code units (JavaScript's default string order), strings are escaped as JSON.stringify
 * does. Object properties whose value is `undefined` are left out, as JSON.stringify leaves them
 * out, so optional fields need no special handling; everything JSON cannot represent is refused.
 *
 * This runs for every audit entry on the request path, so it is written for speed: no path is
 * built while serialising (a refusal collects it as it unwinds), keys are sorted in place, and
 * strings that need no escaping are quoted without JSON.stringify.
 */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  let refusal: Refusal | undefined;
  try {
    text = serialise(value);
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    refusal = error;
  }
  // Thrown as it always was: a TypeError with the path in its message, nothing more.
  if (refusal) throw new TypeError(`canonicalJson: $${refusal.path}${refusal.reason}`);
  if (text === undefined) throw new TypeError('canonicalJson: the top-level value is undefined');
  return text;
}

/** Thrown inside, turned into the TypeError at the top; each container prepends its step to `path`. */
class Refusal {
  constructor(
    public path: string,
    readonly reason: string,
  ) {}
}

function within(error: unknown, step: string): unknown {
  if (error instanceof Refusal) error.path = step + error.path;
  return error;
}

// String.prototype.isWellFormed is in Node 20 but not in the ES2023 lib this project compiles with.
type WellFormedCheck = string & { isWellFormed(): boolean };

function serialise(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return quote(value, '');
    case 'number':
      if (!Number.isFinite(value)) throw new Refusal('', ` is ${value}, which JSON cannot represent`);
      // Number-to-string is the ECMAScript serialisation RFC 8785 asks for, and String(-0) is '0'.
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return undefined;
    case 'object': {
      if (value === null) return 'null';
      const withJson = value as { toJSON?: () => unknown };
      if (typeof withJson.toJSON === 'function') return serialise(withJson.toJSON());
      return Array.isArray(value) ? serialiseArray(value) : serialiseObject(value as Record<string, unknown>);
    }
    default:
      throw new Refusal('', ` is a ${typeof value}, which JSON cannot represent`);
  }
}

function serialiseArray(items: unknown[]): string {
  const length = items.length;
  let text = '[';
  let i = 0;
  try {
    for (; i < length; i++) {
      if (i > 0) text += ',';
      const item = items[i];
      // A hole writes nothing, as the earlier map/join did (JSON.parse never makes one).
      if (item === undefined && !(i in items)) continue;
      text += serialise(item) ?? 'null';
    }
  } catch (error) {
    throw within(error, `[${i}]`);
  }
  return `${text}]`;
}

function serialiseObject(object: Record<string, unknown>): string {
  const keys = Object.keys(object);
  sortKeys(keys);
  let text = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    let member: string | undefined;
    try {
      member = serialise(object[key]);
    } catch (error) {
      throw within(error, `.${key}`);
    }
    // The key is checked after its value and only when the member is written, as before.
    if (member !== undefined) text += `${text.length > 1 ? ',' : ''}${quote(key, ' key')}:${member}`;
  }
  return `${text}}`;
}

/** In place, by UTF-16 code units like Array.prototype.sort's default; insertion sort for the usual few keys. */
function sortKeys(keys: string[]): void {
  const n = keys.length;
  if (n > 24) {
    keys.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const key = keys[i];
    let j = i - 1;
    while (j >= 0 && keys[j] > key) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = key;
  }
}

function quote(text: string, where: string): string {
  const n = text.length;
  let i = 0;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) break;
  }
  // Printable ASCII without '"' or '\' is its own JSON string body.
  if (i === n) return `"${text}"`;
  // RFC 8785 refuses every string that is not well-formed UTF-16.
  if (!(text as WellFormedCheck).isWellFormed()) throw new Refusal(where, ' holds a lone surrogate, which UTF-8 cannot encode');
  return JSON.stringify(text);
}
