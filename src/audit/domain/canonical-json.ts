/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes an audit entry is hashed as.
 *
 * Numbers use the ECMAScript serialisation (which RFC 8785 adopts), object keys are sorted by
 * UTF-16 code units (JavaScript's default string order), strings are escaped as JSON.stringify
 * does. Object properties whose value is `undefined` are left out, as JSON.stringify leaves them
 * out, so optional fields need no special handling; everything JSON cannot represent is refused.
 */
export function canonicalJson(value: unknown): string {
  const text = serialise(value, '$');
  if (text === undefined) throw new TypeError('canonicalJson: the top-level value is undefined');
  return text;
}

function serialise(value: unknown, path: string): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${path} is ${value}, which JSON cannot represent`);
      return Object.is(value, -0) ? '0' : JSON.stringify(value);
    case 'string':
      if (/\p{Surrogate}/u.test(value.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) {
        throw new TypeError(`canonicalJson: ${path} holds a lone surrogate, which UTF-8 cannot encode`);
      }
      return JSON.stringify(value);
    case 'undefined':
      return undefined;
    case 'object': {
      const withJson = value as { toJSON?: () => unknown };
      if (typeof withJson.toJSON === 'function') return serialise(withJson.toJSON(), path);
      if (Array.isArray(value)) {
        return `[${value.map((item, i) => serialise(item, `${path}[${i}]`) ?? 'null').join(',')}]`;
      }
      const members: string[] = [];
      for (const key of Object.keys(value).sort()) {
        const member = serialise((value as Record<string, unknown>)[key], `${path}.${key}`);
        if (member !== undefined) members.push(`${serialise(key, `${path} key`)}:${member}`);
      }
      return `{${members.join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: ${path} is a ${typeof value}, which JSON cannot represent`);
  }
}
