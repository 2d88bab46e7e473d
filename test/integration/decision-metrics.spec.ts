import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { collectMetrics } from '../support/metric-reader.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, RECIPIENT, shareRequest, TAGGED_ID } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

const { registered, collect } = collectMetrics();

/** The decisions counted so far, by status. */
async function decisionsByStatus(): Promise<Record<string, number>> {
  const { resourceMetrics } = await collect();
  const counted: Record<string, number> = {};
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== 'sluice.share.decisions') continue;
      for (const point of metric.dataPoints) counted[String(point.attributes['sluice.decision.status'])] = point.value as number;
    }
  }
  return counted;
}

/**
 * The decision counter counts what took effect: a decision whose transaction failed was never
 * made as far as anyone can see (the caller got a 500 and may try again), so it is not counted.
 */
describeEachDatabase('the share decision counter', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    expect(registered).toBe(true);
    sluice = await startTestApp(dialect);
    expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) })).status).toBe(201);
    for (const id of [AUTHOR_ID, TAGGED_ID]) expect((await sluice.request('POST', '/v1/consents', { body: consent('workplace', id) })).status).toBe(201);
  });
  afterAll(async () => {
    await sluice?.close();
  });

  const share = () => sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: { 'idempotency-key': randomUUID() } });

  it('counts a recorded decision once, and not one whose transaction failed', async () => {
    const before = (await decisionsByStatus()).accepted ?? 0;
    expect((await share()).status).toBe(201);
    expect((await decisionsByStatus()).accepted).toBe(before + 1);

    if (dialect === 'sqlite') {
      await sluice.database.adminQuery("CREATE TRIGGER decision_metrics_probe BEFORE INSERT ON shares BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    } else {
      await sluice.database.adminQuery("CREATE FUNCTION decision_metrics_probe() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$");
      await sluice.database.adminQuery('CREATE TRIGGER decision_metrics_probe BEFORE INSERT ON shares FOR EACH ROW EXECUTE FUNCTION decision_metrics_probe()');
    }
    const failed = await share();
    expect(failed.status).toBe(500);
    expect((await decisionsByStatus()).accepted).toBe(before + 1);

    await sluice.database.adminQuery(dialect === 'sqlite' ? 'DROP TRIGGER decision_metrics_probe' : 'DROP TRIGGER decision_metrics_probe ON shares');
    expect((await share()).status).toBe(201);
    expect((await decisionsByStatus()).accepted).toBe(before + 2);
  });
});
