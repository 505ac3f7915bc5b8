/**
 * Two framing faults that let one exchange leak into another, over raw sockets: a request with
 * more than one Host header (400 whatever the order, RFC 9112 §3.2), and a CONNECT pipelined
 * behind a GET on one connection (the client must read the GET's whole response before
 * `200 Connection Established`, and the tunnel must work after it).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import type { EgressProxy } from '../src/index.js';
import { rawExchange, statusOf } from './fixtures.js';
import { proxyFor, world, type World } from './harness.js';

let w: World;
let proxy: EgressProxy;

t.before(async () => {
  w = await world();
  proxy = await proxyFor(w);
});
t.teardown(() => w.close());

t.test(
  'two Host headers are 400 in either order, for GET and CONNECT; nothing is forwarded',
  { timeout: 20_000 },
  async (t) => {
    const good = `allowed.test:${w.origin.port}`;
    const other = `127.0.0.1:${w.canary.port}`;
    const before = { origin: w.origin.requests.length, decisions: w.decisions.length };
    for (const [first, second] of [
      [good, other],
      [other, good],
      [good, good],
    ]) {
      const r = await rawExchange(
        proxy.address.port,
        `GET http://${good}/two-hosts HTTP/1.1\r\nHost: ${first}\r\nHost: ${second}\r\nConnection: close\r\n\r\n`,
      );
      t.equal(statusOf(r), 400, `Host: ${first} then ${second}`);
      t.match(r, /PCX_EGRESS_BAD_REQUEST/);
      t.match(r, /the request has 2 Host headers; send exactly one/);
      const c = await rawExchange(
        proxy.address.port,
        `CONNECT allowed.test:${w.tls.port} HTTP/1.1\r\nHost: allowed.test:${w.tls.port}\r\nHost: ${second}\r\n\r\n`,
      );
      t.equal(statusOf(c), 400, `CONNECT with a second Host: ${second}`);
    }
    t.equal(w.origin.requests.length, before.origin, 'the origin saw nothing');
    t.equal(w.decisions.length, before.decisions, 'nothing was even decided');
    t.equal(w.canary.connections, 0);
  },
);

t.test(
  'a CONNECT pipelined after a GET is answered after the GET, and the tunnel then works',
  { timeout: 20_000 },
  async (t) => {
    const s = connect(proxy.address.port, '127.0.0.1');
    t.teardown(() => s.destroy());
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
    };
    s.on('data', onData);
    await once(s, 'connect');
    const held = once(w.origin.events, 'held');
    s.write(
      `GET http://allowed.test:${w.origin.port}/hold HTTP/1.1\r\nHost: allowed.test:${w.origin.port}\r\n\r\n` +
        `CONNECT allowed.test:${w.tls.port} HTTP/1.1\r\nHost: allowed.test:${w.tls.port}\r\n\r\n`,
    );
    await held;
    // The GET is unanswered at the origin. A proxy that answers the CONNECT out of order shows it
    // within this grace period (its first bytes end the wait); a correct one sends nothing.
    await Promise.race([once(s, 'data'), sleep(300)]);
    t.equal(got.toString('latin1'), '', 'nothing is answered while the earlier GET is unanswered');
    w.origin.release();
    while (!got.includes('\r\n\r\nHTTP/1.1 200 Connection Established\r\n\r\n')) {
      const [d] = (await Promise.race([once(s, 'data'), once(s, 'close')])) as [Buffer | boolean];
      if (typeof d === 'boolean' || d === undefined) break;
    }
    const text = got.toString('latin1');
    t.match(text, /^HTTP\/1\.1 200 OK\r\n/, 'the GET is answered first');
    const body = text.indexOf('hello from origin GET /hold');
    const established = text.indexOf('HTTP/1.1 200 Connection Established');
    t.ok(body > 0 && established > body, 'the whole GET response comes before the tunnel is established');
    // The same connection is now the tunnel: TLS through it to the origin.
    s.off('data', onData);
    const tls = tlsConnect({ socket: s, servername: 'allowed.test', ca: readFileSync(w.tls.certFile) });
    await once(tls, 'secureConnect');
    tls.write('GET /through-the-tunnel HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n');
    let answer = '';
    tls.setEncoding('utf8');
    tls.on('data', (d: string) => {
      answer += d;
    });
    await once(tls, 'end');
    t.match(answer, /hello over tls \/through-the-tunnel/);
    t.equal(w.canary.connections, 0);
  },
);
