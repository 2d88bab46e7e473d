import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { findPii, RECOGNISER_IDS, type PiiFinding, type RecogniserId } from '../../../src/policy/domain/recognisers/index.js';

export const CORPUS_PATH = fileURLToPath(new URL('../../fixtures/recogniser-corpus.yaml', import.meta.url));

const LANGUAGES = ['nl', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

export interface LabelledSentence {
  language: Language;
  text: string;
  expected: PiiFinding[];
}

export interface Figures {
  expected: number;
  found: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  precision: number;
  recall: number;
}

export interface CorpusError {
  kind: 'false positive' | 'false negative';
  recogniser: RecogniserId;
  value: string;
  text: string;
}

export interface CorpusMetrics {
  sentences: Record<Language, number> & { total: number; withoutFindings: number };
  byRecogniser: Record<RecogniserId, Figures>;
  byLanguage: Record<Language, Figures>;
  overall: Figures;
  errors: CorpusError[];
}

/**
 * Reads the labelled corpus: per language a list of `{ text, expect: [{ <recogniser>: <substring> }] }`.
 * Expectations resolve to spans by searching the text; a repeated substring takes its next occurrence.
 * Throws on any malformed entry, so a typo in the corpus cannot silently lower a figure.
 */
export function loadCorpus(path = CORPUS_PATH): LabelledSentence[] {
  const document: unknown = parse(readFileSync(path, 'utf8'));
  if (!isRecord(document)) throw new Error(`${path}: expected a mapping of languages`);
  return LANGUAGES.flatMap((language) => {
    const entries = document[language];
    if (!Array.isArray(entries)) throw new Error(`${path}: ${language} is not a list`);
    return entries.map((entry: unknown, index) => parseSentence(entry, `${path}: ${language}[${index}]`, language));
  });
}

function parseSentence(entry: unknown, where: string, language: Language): LabelledSentence {
  if (!isRecord(entry) || typeof entry.text !== 'string' || !Array.isArray(entry.expect)) throw new Error(`${where}: needs text and expect`);
  const text = entry.text;
  const searchFrom = new Map<string, number>();
  const expected = entry.expect.map((expectation: unknown): PiiFinding => {
    const pairs = isRecord(expectation) ? Object.entries(expectation) : [];
    const [recogniser, value] = pairs[0] ?? [];
    if (pairs.length !== 1 || !isRecogniserId(recogniser) || typeof value !== 'string') throw new Error(`${where}: malformed expectation ${JSON.stringify(expectation)}`);
    const start = text.indexOf(value, searchFrom.get(value) ?? 0);
    if (start < 0) throw new Error(`${where}: "${value}" does not occur in the text`);
    searchFrom.set(value, start + value.length);
    return { recogniser, start, end: start + value.length };
  });
  return { language, text, expected };
}

/** Runs every recogniser over the corpus; a finding is a true positive only with the exact span and recogniser. */
export function measureCorpus(sentences: readonly LabelledSentence[]): CorpusMetrics {
  const counts = new Map<string, { expected: number; found: number; truePositives: number }>();
  const count = (key: string) => {
    let entry = counts.get(key);
    if (!entry) counts.set(key, (entry = { expected: 0, found: 0, truePositives: 0 }));
    return entry;
  };
  const errors: CorpusError[] = [];

  for (const sentence of sentences) {
    const found = findPii(sentence.text);
    const keyOf = (f: PiiFinding) => `${f.recogniser}@${f.start}-${f.end}`;
    const expectedKeys = new Set(sentence.expected.map(keyOf));
    const foundKeys = new Set(found.map(keyOf));
    const tally = (finding: PiiFinding, field: 'expected' | 'found' | 'truePositives') => {
      for (const key of [finding.recogniser, sentence.language, 'overall']) count(key)[field]++;
    };
    for (const finding of sentence.expected) {
      tally(finding, 'expected');
      if (foundKeys.has(keyOf(finding))) tally(finding, 'truePositives');
      else errors.push(errorOf('false negative', finding, sentence.text));
    }
    for (const finding of found) {
      tally(finding, 'found');
      if (!expectedKeys.has(keyOf(finding))) errors.push(errorOf('false positive', finding, sentence.text));
    }
  }

  const figuresOf = (key: string) => figures(count(key));
  return {
    sentences: {
      total: sentences.length,
      nl: sentences.filter((s) => s.language === 'nl').length,
      en: sentences.filter((s) => s.language === 'en').length,
      withoutFindings: sentences.filter((s) => s.expected.length === 0).length,
    },
    byRecogniser: Object.fromEntries(RECOGNISER_IDS.map((id) => [id, figuresOf(id)])) as Record<RecogniserId, Figures>,
    byLanguage: { nl: figuresOf('nl'), en: figuresOf('en') },
    overall: figuresOf('overall'),
    errors,
  };
}

/** The figures as a Markdown table, for bench/RESULTS.md. */
export function metricsTable(metrics: CorpusMetrics): string {
  const row = (name: string, f: Figures) =>
    `| ${name} | ${f.expected} | ${f.found} | ${f.truePositives} | ${f.falsePositives} | ${f.falseNegatives} | ${percent(f.precision)} | ${percent(f.recall)} |`;
  const { sentences } = metrics;
  return [
    `Corpus: ${sentences.total} sentences (${sentences.nl} Dutch, ${sentences.en} English), ${sentences.withoutFindings} of them without any finding.`,
    '',
    '| Recogniser | Expected | Found | TP | FP | FN | Precision | Recall |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...RECOGNISER_IDS.map((id) => row(id, metrics.byRecogniser[id])),
    row('Dutch sentences', metrics.byLanguage.nl),
    row('English sentences', metrics.byLanguage.en),
    row('**All**', metrics.overall),
    '',
  ].join('\n');
}

function figures(c: { expected: number; found: number; truePositives: number }): Figures {
  return {
    ...c,
    falsePositives: c.found - c.truePositives,
    falseNegatives: c.expected - c.truePositives,
    // With nothing found (or nothing to find) there is nothing wrong: count it as perfect.
    precision: c.found === 0 ? 1 : c.truePositives / c.found,
    recall: c.expected === 0 ? 1 : c.truePositives / c.expected,
  };
}

function errorOf(kind: CorpusError['kind'], finding: PiiFinding, text: string): CorpusError {
  return { kind, recogniser: finding.recogniser, value: text.slice(finding.start, finding.end), text };
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isRecogniserId(value: unknown): value is RecogniserId {
  return (RECOGNISER_IDS as readonly unknown[]).includes(value);
}
