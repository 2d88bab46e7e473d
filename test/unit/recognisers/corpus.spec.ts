import { describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { RECOGNISER_IDS } from '../../../src/policy/domain/recognisers/index.js';
import { loadCorpus, measureCorpus, metricsTable, type CorpusError, type Figures } from './corpus-metrics.js';

const MIN_PRECISION = 0.95;
const MIN_RECALL = 0.98;

const sentences = loadCorpus();
const metrics = measureCorpus(sentences);

// RECOGNISER_REPORT=<path> writes the figures as a Markdown table (for bench/RESULTS.md).
const reportPath = process.env.RECOGNISER_REPORT;
if (reportPath) writeFileSync(reportPath, metricsTable(metrics));

/** Empty when the figures reach the targets; otherwise what went wrong, so a failure shows the sentences. */
function shortfall(figures: Figures, errors: readonly CorpusError[]): string[] {
  if (figures.precision >= MIN_PRECISION && figures.recall >= MIN_RECALL) return [];
  return [
    `precision ${figures.precision.toFixed(3)} (min ${MIN_PRECISION}), recall ${figures.recall.toFixed(3)} (min ${MIN_RECALL})`,
    ...errors.map((e) => `${e.kind} ${e.recogniser} "${e.value}" in: ${e.text}`),
  ];
}

describe('recogniser accuracy on the labelled corpus', () => {
  it('has at least 320 sentences, Dutch and English roughly half and half', () => {
    expect(metrics.sentences.total).toBeGreaterThanOrEqual(320);
    expect(Math.min(metrics.sentences.nl, metrics.sentences.en) / metrics.sentences.total).toBeGreaterThan(0.4);
  });

  it.each(RECOGNISER_IDS)('%s reaches precision >= 0.95 and recall >= 0.98', (id) => {
    const figures = metrics.byRecogniser[id];
    expect(figures.expected).toBeGreaterThan(0);
    expect(shortfall(figures, metrics.errors.filter((e) => e.recogniser === id))).toEqual([]);
  });

  it('reaches precision >= 0.95 and recall >= 0.98 over all recognisers', () => {
    expect(shortfall(metrics.overall, metrics.errors)).toEqual([]);
  });
});
