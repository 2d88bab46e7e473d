import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CanonicalEntryMatcher } from './canonical-entry-matcher.js';

const ENTRY_SCHEMA = 'audit-entry.schema.json';
const EXPORT_SCHEMA = 'audit-export.schema.json';

/**
 * The schemas folder, found upwards from this module (src/ under tests, dist/src/ when built, or
 * wherever the verifier is shipped with a schemas/ folder next to it).
 */
function schemasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'schemas', ENTRY_SCHEMA))) return join(dir, 'schemas');
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`schemas/${ENTRY_SCHEMA} not found above the verifier`);
    dir = parent;
  }
}

export interface BundleSchemas {
  entry: ValidateFunction;
  header: ValidateFunction;
  /** The fast path for entries the gateway writes (see CanonicalEntryMatcher), compiled from the same schema. */
  entryMatcher: CanonicalEntryMatcher;
}

/**
 * Each validator is compiled when first used: a verification thread whose entries all take the
 * fast path never needs ajv's code for the entry schema, which takes a fifth of a second to build.
 */
class LazySchemas implements BundleSchemas {
  readonly entryMatcher: CanonicalEntryMatcher;
  private readonly ajv: Ajv2020;
  private entryValidator: ValidateFunction | undefined;
  private headerValidator: ValidateFunction | undefined;

  constructor(dir: string) {
    const read = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>;
    // discriminator: each entry is checked against its kind's schema only, with that kind's errors;
    // plain regular expressions (the patterns are ASCII) cost less per entry than unicode ones.
    this.ajv = new Ajv2020({ allErrors: false, discriminator: true, strict: true, strictRequired: false, unicodeRegExp: false });
    const entrySchema = read(ENTRY_SCHEMA);
    this.ajv.addSchema(entrySchema);
    this.ajv.addSchema(read(EXPORT_SCHEMA));
    this.entryMatcher = CanonicalEntryMatcher.fromSchema(entrySchema);
  }

  get entry(): ValidateFunction {
    return (this.entryValidator ??= this.ajv.getSchema(`https://sluice.local/schemas/${ENTRY_SCHEMA}`)!);
  }

  get header(): ValidateFunction {
    return (this.headerValidator ??= this.ajv.getSchema(`https://sluice.local/schemas/${EXPORT_SCHEMA}`)!);
  }
}

let compiled: BundleSchemas | undefined;

/** The entry and bundle-header validators, once per process (thread). */
export function bundleSchemas(): BundleSchemas {
  return (compiled ??= new LazySchemas(schemasDir()));
}

/** The first schema error as `<path> <message>` ("(top level)" for the whole object). */
export function describeSchemaError(errors: ErrorObject[] | null | undefined): string {
  const error = errors?.[0];
  if (!error) return 'does not match the schema';
  const where = error.instancePath ? error.instancePath.slice(1).replaceAll('/', '.') : '(top level)';
  const extra = error.keyword === 'additionalProperties' ? ` (${String((error.params as { additionalProperty?: string }).additionalProperty)})` : '';
  // A member whose schema is `false` (not allowed in this case of its entry): ajv says "boolean schema is false".
  const message = error.keyword === 'false schema' ? 'must not be present' : (error.message ?? 'is not valid');
  return `${where} ${message}${extra}`;
}
