/**
 * Denials say why wherever a client may look: the status line's reason phrase (all that curl,
 * Python requests and git show of a refused CONNECT), X-Portcullis-Reason and the JSON body. The
 * phrase holds only what a reason phrase may (visible ASCII here; the rest is escaped), so a
 * `because` cannot split the status line or add a header.
 */
import t from 'tap';
import type { EgressProxy } from '../src/index.js';
import { rawExchange } from './fixtures.js';
import { proxyFor, world, type World } from './harness.js';

let w: World;
let proxy: EgressProxy;

t.before(async () => {
  w = await world();
  proxy = await proxyFor(w);
});
t.teardown(() => w.close());

const statusLine = (r: string): string => r.slice(0, r.indexOf('\r\n'));
const header = (r: string, name: string): string | undefined =>
  new RegExp(`\\r\\n${name}: ([^\\r]*)\\r\\n`, 'i').exec(r.slice(0, r.indexOf('\r\n\r\n') + 2))?.[1];
const get = (host: string): Promise<string> =>
  rawExchange(
    proxy.address.port,
    `GET http://${host}:${w.origin.port}/ HTTP/1.1\r\nHost: ${host}:${w.origin.port}\r\nConnection: close\r\n\r\n`,
  );
const connectTo = (host: string): Promise<string> =>
  rawExchange(proxy.address.port, `CONNECT ${host}:${w.tls.port} HTTP/1.1\r\nHost: ${host}:${w.tls.port}\r\n\r\n`);

t.test('a policy deny names the rule in the status line and the header, for HTTP and CONNECT', async (t) => {
  for (const r of [await get('denied.test'), await connectTo('denied.test')]) {
    t.equal(statusLine(r), 'HTTP/1.1 403 Forbidden: test#1: denied.test is off limits');
    t.equal(header(r, 'x-portcullis-reason'), 'test#1: denied.test is off limits');
    t.match(r, /"because":"denied.test is off limits"/);
  }
});

t.test('a because outside visible ASCII is escaped: it cannot split the status line or add a header', async (t) => {
  for (const r of [await get('unicode.test'), await connectTo('unicode.test')]) {
    t.equal(statusLine(r), 'HTTP/1.1 403 Forbidden: test#4: verboten f\\u00fcr dich\\u000d\\u000aX-Injected: 1');
    t.equal(header(r, 'x-injected'), undefined);
    t.equal(header(r, 'x-portcullis-reason'), 'test#4: verboten f\\u00fcr dich\\u000d\\u000aX-Injected: 1');
  }
});

t.test('a lease the PDP ignored says why in the reason header', async (t) => {
  const r = await get('leased.test');
  t.equal(
    header(r, 'x-portcullis-reason'),
    `default deny: no rule allows net.http to leased.test:${w.origin.port}; lease "lease-42" ignored: expired`,
  );
  t.match(statusLine(r), /^HTTP\/1\.1 403 Forbidden: default deny: .*; lease "lease-42" ignored: expired$/);
});

t.test('a deny the PDP could not evaluate carries its code in a header, the status line and the body', async (t) => {
  const r = await connectTo('broken.test');
  t.equal(statusLine(r), 'HTTP/1.1 403 Forbidden: PCX_REQ_BAD_TYPE: context.session must be a string');
  t.equal(header(r, 'x-portcullis-code'), 'PCX_REQ_BAD_TYPE');
  t.match(r, /"error":\{"code":"PCX_REQ_BAD_TYPE"/);
});

t.test('a refusal says its code and why in the status line too, bounded', async (t) => {
  const r = await rawExchange(
    proxy.address.port,
    `GET http://allowed.test/ HTTP/1.1\r\nHost: ${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.test\r\n` +
      'Connection: close\r\n\r\n',
  );
  const line = statusLine(r);
  t.match(line, /^HTTP\/1\.1 400 Bad Request: PCX_EGRESS_HOST_MISMATCH: the Host header "b+/);
  t.ok(line.length <= 'HTTP/1.1 400 Bad Request: '.length + 240, `${line.length} characters`);
  t.equal(header(r, 'x-portcullis-code'), 'PCX_EGRESS_HOST_MISMATCH');
});
