import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fideslangCategories, isSpecialCategory, schemasDir } from './data-categories.js';
import { RECOGNISER_CATEGORIES } from './recognisers/index.js';

describe('data categories', () => {
  const { version, categories } = fideslangCategories();

  it('are the pinned fideslang release, with its attribution', () => {
    expect(version).toBe('3.1.2');
    expect(categories.size).toBe(85);
    const notice = readFileSync(join(schemasDir(), 'fideslang', 'NOTICE.md'), 'utf8');
    expect(notice).toContain('CC BY 4.0');
    expect(notice).toContain('3.1.2');
  });

  it('accept fideslang keys and org.<organisation>.<name> extensions in the schema, nothing else', () => {
    const schema = JSON.parse(readFileSync(join(schemasDir(), 'policy.schema.json'), 'utf8'));
    const [keys, extension] = schema.$defs.dataCategory.anyOf as [{ enum: string[] }, { pattern: string }];
    const accepted = (key: string) => keys.enum.includes(key) || new RegExp(extension.pattern).test(key);
    expect(accepted('user.contact.phone_number')).toBe(true);
    expect(accepted('org.acme.shift_roster')).toBe(true);
    for (const key of ['user.nickname', 'org.acme', 'org.Acme.x', 'user.', 'User.name', '']) expect(accepted(key)).toBe(false);
  });

  it('give every recogniser a known category', () => {
    expect(RECOGNISER_CATEGORIES.iban).toBe('user.financial.bank_account');
    expect(RECOGNISER_CATEGORIES.bsn).toBe('user.government_id.national_identification_number');
    for (const category of Object.values(RECOGNISER_CATEGORIES)) expect(categories.has(category)).toBe(true);
  });

  it('mark the GDPR Art. 9 and 10 categories', () => {
    expect(isSpecialCategory('user.health_and_medical.genetic')).toBe(true);
    expect(isSpecialCategory('user.demographic.religious_belief')).toBe(true);
    expect(isSpecialCategory('user.criminal_history')).toBe(true);
    expect(isSpecialCategory('user.demographic.age_range')).toBe(false);
    expect(isSpecialCategory('user.content')).toBe(false);
  });

  it('are the ones the JSON Schema offers editors', () => {
    const schema = JSON.parse(readFileSync(join(schemasDir(), 'policy.schema.json'), 'utf8'));
    expect([...schema.$defs.dataCategory.anyOf[0].enum].sort()).toEqual([...categories.keys()].sort());
  });

  it('are the ones docs/policies.md lists', () => {
    const docs = readFileSync(join(schemasDir(), '..', 'docs', 'policies.md'), 'utf8');
    const section = docs.slice(docs.indexOf('\n', docs.indexOf('<!-- categories:start')) + 1, docs.indexOf('<!-- categories:end -->'));
    const expected = [
      '| Key | Name | Description |',
      '|---|---|---|',
      ...[...categories.values()]
        .sort((a, b) => (a.key < b.key ? -1 : 1))
        .map((c) => `| \`${c.key}\`${isSpecialCategory(c.key) ? ' †' : ''} | ${c.name} | ${c.description.replaceAll('|', '\\|').replaceAll('\n', ' ')} |`),
    ];
    expect(section.trimEnd().split('\n')).toEqual(expected);
  });
});
