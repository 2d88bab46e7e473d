import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { SUBJECT_REPORT_STYLE_HASH } from '../../../src/platform/http/security-headers.js';
import { renderSubjectReportHtml } from '../../../src/subjects/get-subject-report/subject-report.html.js';

describe('the Content-Security-Policy', () => {
  it("allows exactly the subject report's inline style, by its hash", () => {
    const html = renderSubjectReportHtml({
      subject: { type: 'whatsapp', id: '31612345678' },
      generatedAt: '2026-11-20T10:00:00.000Z',
      found: false,
      log: { size: 0, checkpoint: null },
      consents: [],
      crossings: [],
      deliveries: [],
    });
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => `sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}`);
    expect(styles).toEqual([SUBJECT_REPORT_STYLE_HASH]);
    // Nothing else that a CSP of default-src 'none' would block.
    expect(html).not.toMatch(/<script|<link|<img|<iframe|style="/i);
  });
});
