import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { egressCommand, EgressMetrics, serveMetrics } from '../src/index.js';

const sink = () => {
  let text = '';
  return {
    stream: {
      write: (s: string) => {
        text += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream,
    text: () => text,
  };
};

async function codeOf(argv: string[]): Promise<string | undefined> {
  const out = sink();
  try {
    await egressCommand(argv, { stdout: out.stream, stderr: out.stream });
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

t.test('usage mistakes are PcxErrors with stable codes, before anything listens', async (tt) => {
  const base = ['--pdp', '/nonexistent/pdp.sock', '--audit', '/nonexistent/audit.sock', '--principal', 'a'];
  tt.equal(await codeOf(['--audit', 'x', '--principal', 'a']), 'PCX_USAGE', 'missing --pdp');
  tt.equal(await codeOf([...base, '--mode', 'loose']), 'PCX_USAGE');
  tt.equal(await codeOf([...base, '--allow-cidr', '127.0.0.1/8']), 'PCX_EGRESS_BAD_CIDR');
  tt.equal(await codeOf([...base, '--listen', 'localhost:3128']), 'PCX_USAGE');
  tt.equal(await codeOf([...base, '--header-timeout', '0']), 'PCX_USAGE');
  tt.equal(
    await codeOf([...base, '--listen', '127.0.0.1:0', '--metrics', '0.0.0.0:9100']),
    'PCX_EGRESS_METRICS_NOT_LOOPBACK',
  );
  const out = sink();
  tt.equal(await egressCommand(['--help'], { stdout: out.stream, stderr: out.stream }), 0);
  tt.match(out.text(), /Proxy-Authorization/);
});

t.test('a port in use is PCX_EGRESS_LISTEN, not a crash', async (tt) => {
  const { createServer } = await import('node:net');
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  tt.teardown(() => new Promise<void>((r) => busy.close(() => r())));
  const port = (busy.address() as { port: number }).port;
  tt.equal(
    await codeOf([
      '--pdp',
      '/nonexistent/pdp.sock',
      '--audit',
      '/nonexistent/audit.sock',
      '--principal',
      'a',
      '--listen',
      `127.0.0.1:${port}`,
    ]),
    'PCX_EGRESS_LISTEN',
  );
});

t.test('the built CLI prints a usage mistake without a stack trace and exits 2', async (tt) => {
  const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'bin', 'portcullis.js');
  const r = spawnSync(
    process.execPath,
    [bin, 'egress', '--pdp', 'x', '--audit', 'y', '--principal', 'p', '--allow-cidr', '10.0.0.1/8'],
    { encoding: 'utf8' },
  );
  tt.equal(r.status, 2);
  tt.match(r.stderr, /host bits set/);
  tt.match(r.stderr, /did you mean 10\.0\.0\.0\/8/);
  tt.notMatch(r.stderr, /\n\s+at /, 'no stack');
});

t.test('metrics: served on loopback only, Prometheus text', async (tt) => {
  const m = new EgressMetrics();
  m.inc('portcullis_egress_requests_total', 'action="net.http",decision="allow",enforced="true"');
  m.observeDecision(0.002);
  await tt.rejects(serveMetrics(m, { host: '192.0.2.1', port: 0 }), { code: 'PCX_EGRESS_METRICS_NOT_LOOPBACK' });
  const server = await serveMetrics(m, { host: '127.0.0.1', port: 0 });
  tt.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve(s));
    })
      .on('error', reject)
      .end();
  });
  tt.match(body, /# TYPE portcullis_egress_requests_total counter/);
  tt.match(body, /portcullis_egress_requests_total\{action="net.http",decision="allow",enforced="true"\} 1/);
  tt.match(body, /portcullis_egress_decision_seconds_bucket\{le="0.0025"\} 1/);
  tt.match(body, /portcullis_egress_decision_seconds_count 1/);
});
