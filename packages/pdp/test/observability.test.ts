// Metrics, scraped from the real HTTP endpoint, and OpenTelemetry spans. The span test registers
// a tiny recording TracerProvider: a test double for an outside service (an OTel SDK/exporter).
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { get } from 'node:http';
import {
  trace,
  type Attributes,
  type Span,
  type SpanOptions,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { RawConn, eventually, request, startTestPdp } from './helpers.js';
import { parseMetricsAddress } from '../src/metrics.js';

function scrape(port: number, path = '/metrics'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

function metric(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

t.test('metrics: decisions by outcome, latency histogram, reloads, errors, in-flight', async (t) => {
  const { pdp, socketPath, policyPath } = await startTestPdp(t, { metrics: { host: '127.0.0.1', port: 0 }, pollMs: 0 });
  const port = pdp.metricsPort!;
  t.ok(port > 0);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  let out = '';
  for (let i = 0; i < 30; i++)
    out += JSON.stringify({ id: i, request: request(['ok.example', 'evil.example', 'ask.example'][i % 3]!) }) + '\n';
  out += JSON.stringify({ id: 99, request: { principal: { id: 'a' }, action: 'no.such', resource: {} } }) + '\n';
  c.write(out);
  await c.frames(31);
  const { status, body } = await scrape(port);
  t.equal(status, 200);
  t.equal(metric(body, 'portcullis_pdp_decisions_total{decision="allow"}'), 10);
  t.equal(metric(body, 'portcullis_pdp_decisions_total{decision="ask"}'), 10);
  t.equal(metric(body, 'portcullis_pdp_decisions_total{decision="deny"}'), 11);
  t.equal(metric(body, 'portcullis_pdp_decision_duration_seconds_count'), 31);
  t.equal(metric(body, 'portcullis_pdp_decision_duration_seconds_bucket{le="+Inf"}'), 31);
  t.ok(metric(body, 'portcullis_pdp_decision_duration_seconds_sum')! > 0);
  t.equal(metric(body, 'portcullis_pdp_reloads_total{result="ok"}'), 1);
  t.equal(metric(body, 'portcullis_pdp_reloads_total{result="failed"}'), 0);
  t.equal(metric(body, 'portcullis_pdp_in_flight'), 0);
  t.equal(metric(body, 'portcullis_pdp_policy_loaded'), 1);
  t.equal(metric(body, 'portcullis_pdp_connections'), 1);
  t.match(body, /portcullis_pdp_errors_total\{code="PCX_REQ_[A-Z_]+"\} 1/, 'the malformed request counted by its code');

  c.write('garbage\n');
  await c.closed;
  writeFileSync(policyPath, 'policy "x" { allow nope.nope }\n');
  await pdp.reload();
  const after = (await scrape(port)).body;
  t.equal(metric(after, 'portcullis_pdp_errors_total{code="PCX_PDP_BAD_FRAME"}'), 1);
  t.equal(metric(after, 'portcullis_pdp_reloads_total{result="failed"}'), 1);
  t.equal(metric(after, 'portcullis_pdp_connections'), 0);
  t.equal((await scrape(port, '/other')).status, 404);
});

t.test('metrics refuse a non-loopback address unless explicitly allowed', async (t) => {
  t.same(parseMetricsAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  t.same(parseMetricsAddress('[::1]:9464'), { host: '::1', port: 9464 });
  t.throws(() => parseMetricsAddress('0.0.0.0:9464'), {
    code: 'PCX_PDP_METRICS_NOT_LOOPBACK',
    message: /not a loopback/,
  });
  t.throws(() => parseMetricsAddress('10.1.2.3:9464'), { code: 'PCX_PDP_METRICS_NOT_LOOPBACK' });
  t.same(parseMetricsAddress('0.0.0.0:9464', { allowRemote: true }), { host: '0.0.0.0', port: 9464 });
  t.throws(() => parseMetricsAddress('9464'), { code: 'PCX_PDP_METRICS_ADDRESS', message: /HOST:PORT/ });
  t.throws(() => parseMetricsAddress('127.0.0.1:99999'), { code: 'PCX_PDP_METRICS_ADDRESS' });
});

interface Recorded {
  name: string;
  attributes: Attributes;
  ended: boolean;
  status?: number;
}

/** The smallest recording TracerProvider: stands in for an OTel SDK. */
class RecordingProvider implements TracerProvider {
  readonly spans: Recorded[] = [];
  getTracer(name: string): Tracer {
    const spans = this.spans;
    const tracerName = name;
    const startSpan = (spanName: string, options?: SpanOptions): Span => {
      const rec: Recorded = { name: `${tracerName}/${spanName}`, attributes: { ...options?.attributes }, ended: false };
      spans.push(rec);
      const span: Span = {
        spanContext: () => ({ traceId: '0'.repeat(31) + '1', spanId: '0'.repeat(15) + '1', traceFlags: 1 }),
        setAttribute: (k, v) => {
          rec.attributes[k] = v;
          return span;
        },
        setAttributes: (a) => {
          Object.assign(rec.attributes, a);
          return span;
        },
        addEvent: () => span,
        addLink: () => span,
        addLinks: () => span,
        setStatus: (s) => {
          rec.status = s.code;
          return span;
        },
        updateName: () => span,
        end: () => void (rec.ended = true),
        isRecording: () => true,
        recordException: () => {},
      };
      return span;
    };
    return {
      startSpan,
      startActiveSpan: ((n: string, ...rest: unknown[]) => {
        const fn = rest[rest.length - 1] as (s: Span) => unknown;
        return fn(startSpan(n));
      }) as Tracer['startActiveSpan'],
    };
  }
}

t.test('a span per decision on tracer portcullis-pdp, with the decision as attributes', async (t) => {
  const provider = new RecordingProvider();
  t.ok(trace.setGlobalTracerProvider(provider), 'registered');
  t.teardown(() => trace.disable());
  const { socketPath } = await startTestPdp(t);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  c.write(
    JSON.stringify({ id: 1, request: request('ok.example') }) +
      '\n' +
      JSON.stringify({ id: 2, request: request('evil.example') }) +
      '\n',
  );
  const [a] = await c.frames(2);
  c.write(JSON.stringify({ id: 3, request: { principal: { id: 'agent-7' }, action: 'no.such', resource: {} } }) + '\n');
  await c.frame();
  await eventually(() => (provider.spans.filter((s) => s.ended).length >= 3 ? true : undefined));
  const spans = provider.spans.filter((s) => s.name === 'portcullis-pdp/pdp.decide');
  t.equal(spans.length, 3);
  t.match(spans[0]!.attributes, {
    'pcx.decision': 'allow',
    'pcx.action': 'net.connect',
    'pcx.principal': 'agent-7',
    'pcx.policy_version': a!.policy_version,
    'pcx.reasons': 1,
  });
  t.match(spans[1]!.attributes, { 'pcx.decision': 'deny' });
  t.match(spans[2]!.attributes, { 'pcx.decision': 'deny', 'pcx.error_code': /^PCX_/ });
  t.equal(spans[2]!.status, 2, 'a malformed request marks the span as an error');
});
