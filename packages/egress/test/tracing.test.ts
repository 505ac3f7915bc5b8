/**
 * OpenTelemetry: a server span per request or tunnel with the decision attributes, and a client
 * span for the upstream exchange, child of the server span. A recording TracerProvider written
 * against @opentelemetry/api stands in for an SDK (an outside library).
 */
import {
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanKind,
  type SpanOptions,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import t from 'tap';
import { rawExchange, statusOf } from './fixtures.js';
import { proxyFor, world } from './harness.js';
import { needs } from '../../../test/helpers/tools.js';

interface Recorded {
  name: string;
  kind: SpanKind | undefined;
  attributes: Attributes;
  parent: Recorded | undefined;
  ended: boolean;
}
const spans: Recorded[] = [];
const byContext = new WeakMap<Span, Recorded>();

class RecordingTracer implements Tracer {
  startSpan(name: string, options: SpanOptions = {}, context?: Context): Span {
    const parentSpan = context ? trace.getSpan(context) : undefined;
    const rec: Recorded = {
      name,
      kind: options.kind,
      attributes: { ...options.attributes },
      parent: parentSpan ? byContext.get(parentSpan) : undefined,
      ended: false,
    };
    spans.push(rec);
    const span: Span = {
      spanContext: () => ({
        traceId: '0'.repeat(31) + '1',
        spanId: String(spans.length).padStart(16, '0'),
        traceFlags: 1,
      }),
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
      setStatus: () => span,
      updateName: () => span,
      end: () => void (rec.ended = true),
      isRecording: () => true,
      recordException: () => {},
    };
    byContext.set(span, rec);
    return span;
  }
  startActiveSpan(): never {
    throw new Error('not used by the proxy');
  }
}
const provider: TracerProvider = { getTracer: () => new RecordingTracer() };
trace.setGlobalTracerProvider(provider);

t.test('server and client spans carry the decision', needs('openssl'), async (tt) => {
  const w = await world();
  tt.teardown(() => w.close());
  const proxy = await proxyFor(w);
  const ok = await rawExchange(
    proxy.address.port,
    `GET http://allowed.test:${w.origin.port}/traced HTTP/1.1\r\nHost: ` +
      `allowed.test:${w.origin.port}\r\nConnection: close\r\n\r\n`,
  );
  tt.equal(statusOf(ok), 200);
  const denied = await rawExchange(
    proxy.address.port,
    `GET http://denied.test:${w.origin.port}/ HTTP/1.1\r\nHost: denied.test:${w.origin.port}\r\nConnection: ` +
      `close\r\n\r\n`,
  );
  tt.equal(statusOf(denied), 403);
  await new Promise((r) => setTimeout(r, 50));
  const servers = spans.filter((s) => s.name === 'egress net.http');
  tt.equal(servers.length, 2);
  const [allowed, deny] = servers;
  tt.equal(allowed!.attributes['portcullis.decision'], 'allow');
  tt.equal(allowed!.attributes['server.address'], 'allowed.test');
  tt.equal(allowed!.attributes['portcullis.policy_version'], 'sha256:test');
  tt.equal(deny!.attributes['portcullis.decision'], 'deny');
  const client = spans.find((s) => s.name === 'egress upstream')!;
  tt.ok(client, 'a client span for the upstream exchange');
  tt.equal(client.parent, allowed, 'child of the server span');
  tt.equal(client.attributes['server.address'], '127.0.0.1', 'the dialled (checked) address');
  tt.equal(client.attributes['http.response.status_code'], 200);
  tt.ok(
    spans.every((s) => s.ended),
    'every span ended',
  );
  tt.equal(spans.filter((s) => s.name === 'egress upstream').length, 1, 'no upstream span for the denied request');
});
