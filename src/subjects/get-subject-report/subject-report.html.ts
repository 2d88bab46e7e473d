import type { Delivery, SubjectReport } from './subject-report.js';

const escape = (value: unknown) =>
  String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The report as a page the person can read; every value is escaped. */
export function renderSubjectReportHtml(report: SubjectReport): string {
  const crossings = report.crossings
    .map(
      (c) => `<section>
  <h3>${escape(new Date(c.time).toUTCString())}: share ${escape(c.share)} (${escape(c.status)})</h3>
  <p>You took part as: ${escape(c.roles.join(', ') || 'someone named in it')}. Purpose <code>${escape(c.purpose)}</code>, policy <code>${escape(c.policy.name ?? 'none')}</code>,
  lawful basis ${escape(c.lawfulBasis ?? 'none')}, your consent at the time: ${escape(c.consent ?? 'not asked')}.
  Sent to ${c.recipients.allowed} of ${c.recipients.total} recipient(s).</p>
  ${c.expired ? '<p>The details are past the retention period and are no longer kept.</p>' : ''}
  ${c.crossed.length ? `<table><tr><th>What crossed</th><th>Category</th><th>How</th><th>About you</th></tr>${c.crossed.map((f) => `<tr><td>${escape(f.path)}</td><td>${escape(f.category)}</td><td>${escape(f.transform)}</td><td>${f.aboutYou ? 'yes' : ''}</td></tr>`).join('')}</table>` : ''}
  ${c.yourData.length ? `<p>Your data that crossed: ${c.yourData.map((category) => `<code>${escape(category)}</code>`).join(', ')}.</p>` : ''}
  ${c.redactions.length ? `<p>Removed before sending: ${c.redactions.map((r) => `${r.count} × ${escape(r.recogniser)}`).join(', ')}.</p>` : ''}
  ${c.message !== null ? `<pre>${escape(c.message)}</pre>` : ''}
</section>`,
    )
    .join('\n');
  const consents = report.consents.map((c) => `<li>${escape(new Date(c.time).toUTCString())}: ${escape(c.status)} for ${escape(c.purpose)} (${escape(c.evidence)})</li>`).join('');
  const deliveries = report.deliveries.map((d) => `<li>${escape(new Date(d.time).toUTCString())}: a message of share ${escape(d.share)} ${deliveryStep(d)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>What sluice recorded about you</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;line-height:1.5}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}pre{background:#f4f4f4;padding:.5rem;white-space:pre-wrap}</style></head>
<body>
<h1>What sluice recorded about you</h1>
<p>Report for ${escape(report.subject.type)} ${escape(report.subject.id)}, made ${escape(report.generatedAt)} from an audit log of ${report.log.size} entries.</p>
${report.found ? '' : '<p>sluice holds nothing that can be tied to you.</p>'}
<h2>Your consents</h2>${consents ? `<ul>${consents}</ul>` : '<p>None recorded.</p>'}
<h2>Shares that involved you</h2>${crossings || '<p>None.</p>'}
<h2>Messages sent to you</h2>${deliveries ? `<ul>${deliveries}</ul>` : '<p>None.</p>'}
</body></html>
`;
}

/** What happened to the message, in words: escaped. */
function deliveryStep(d: Delivery): string {
  const error = d.error ? ` (${escape(d.error)})` : '';
  const again = d.sentAgain ? '; it was then queued to be sent again' : '';
  switch (d.outcome) {
    case 'sent':
      return d.confirmedByStatus ? "was sent to WhatsApp: WhatsApp's report on a copy sent earlier showed it had got through" : 'was sent to WhatsApp';
    case 'cancelled':
      return `was cancelled before it was sent${d.detail ? ` (${escape(d.detail)})` : ''}`;
    case 'failed':
      return `could not be sent${error}${again}`;
    case 'status':
      return `was reported ${escape(d.detail ?? 'changed')} by WhatsApp${error}${again}`;
  }
}
