/**
 * The closing record is off the response path (fire-and-track): the client gets its answer
 * before the sink acknowledges the totals, a lost closing record is counted and logged, and
 * shutdown waits for closing records still in flight. The decision record, by contrast, still
 * gates forwarding (bypass.test.ts). The PDP and the sink are in-process doubles of their
 * clients' shapes here; test/egress.test.ts runs the real ones.
 */
import { createServer, request } from 'node:http';
import t from 'tap';
import { EgressMetrics, startEgressProxy, type EgressAuditRecord } from '../src/index.js';

t.test('the response does not wait for the closing ack; a lost one is counted; close() waits', async (tt) => {
  let hits = 0;
  const origin = createServer((_req, res) => {
    hits++;
    res.end('hello');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  tt.teardown(() => new Promise<void>((r) => origin.close(() => r())));
  const port = (origin.address() as { port: number }).port;

  const records: EgressAuditRecord[] = [];
  let failClose: ((e: Error) => void) | undefined;
  const logs: Array<Record<string, unknown>> = [];
  const metrics = new EgressMetrics();
  const proxy = await startEgressProxy({
    listen: { host: '127.0.0.1', port: 0 },
    principal: { id: 't' },
    allowCidrs: ['127.0.0.0/8'],
    metrics,
    log: (e) => logs.push(e),
    decide: async () => ({ decision: 'allow', reasons: [{ effect: 'allow', rule: 'r', because: 'test' }] }),
    audit: (record) => {
      records.push(record);
      // Decision records are acked at once; the closing record's ack is held until we fail it.
      if (record.outcome.phase === 'decision') return Promise.resolve({ seq: records.length, hash: '0'.repeat(64) });
      return new Promise((_, reject) => (failClose = reject));
    },
  });

  const body = await new Promise<string>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: proxy.address.port,
        path: `http://127.0.0.1:${port}/`,
        headers: { host: `127.0.0.1:${port}` },
        agent: false,
      },
      (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      },
    );
    req.on('error', reject);
    req.end();
  });
  tt.equal(body, 'hello', 'the client got the response');
  tt.equal(hits, 1);
  // The closing record is written right after the response ends; its ack is still pending.
  await new Promise((r) => setTimeout(r, 50));
  tt.same(
    records.map((r) => r.outcome.phase),
    ['decision', 'close'],
    'both records were sent',
  );
  tt.ok(failClose, 'the closing ack is still outstanding');

  let closed = false;
  const closing = proxy.close().then(() => (closed = true));
  await new Promise((r) => setTimeout(r, 50));
  tt.equal(closed, false, 'shutdown waits for the closing record in flight');
  failClose!(new Error('sink went away'));
  await closing;
  tt.match(metrics.render(), /portcullis_egress_audit_close_failures_total 1/);
  tt.ok(logs.some((l) => l.event === 'audit_close_failed' && l.event_id === records[1]!.event_id));
});
