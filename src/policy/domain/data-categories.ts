import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DataCategory {
  key: string;
  name: string;
  description: string;
  parent: string | null;
}

/**
 * GDPR Art. 9 special categories (and Art. 10 criminal data) among the fideslang keys: a policy
 * letting any of these cross needs an Art. 9(2) exception, so the privacy diff flags them.
 */
const SPECIAL_CATEGORY_ROOTS = [
  'user.biometric',
  'user.authorization.biometric',
  'user.health_and_medical',
  'user.demographic.political_opinion',
  'user.demographic.race_ethnicity',
  'user.demographic.religious_belief',
  'user.demographic.sexual_orientation',
  'user.criminal_history',
];

let pinned: { version: string; categories: Map<string, DataCategory> } | undefined;

/** The repository's schemas folder, found from this module whether it runs from src/ or from dist/src/. */
export function schemasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'schemas');
    if (existsSync(join(candidate, 'policy.schema.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('schemas/policy.schema.json not found above the policy module');
    dir = parent;
  }
}

/**
 * The version-pinned fideslang data categories (schemas/fideslang, CC BY 4.0, see its NOTICE.md).
 * Policies are checked against them by the JSON Schema, which also admits organisation
 * extensions `org.<organisation>.<category>`; a test keeps the schema and this copy equal.
 */
export function fideslangCategories(): { version: string; categories: ReadonlyMap<string, DataCategory> } {
  if (!pinned) {
    const file = JSON.parse(readFileSync(join(schemasDir(), 'fideslang', 'data-categories.json'), 'utf8')) as { version: string; categories: DataCategory[] };
    pinned = { version: file.version, categories: new Map(file.categories.map((c) => [c.key, c])) };
  }
  return pinned;
}

export function isSpecialCategory(key: string): boolean {
  return SPECIAL_CATEGORY_ROOTS.some((root) => key === root || key.startsWith(`${root}.`));
}

/**
 * The special categories a broader category covers (`user.demographic` holds religious belief and
 * sexual orientation, `user` holds them all): data labelled so may be any of them.
 */
export function specialCategoriesCovered(key: string): string[] {
  return SPECIAL_CATEGORY_ROOTS.filter((root) => root.startsWith(`${key}.`));
}
