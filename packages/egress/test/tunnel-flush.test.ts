/**
 * A tunnel must deliver every byte one side sent before it closed, even when the other side
 * reads slowly: the origin here writes 8 MiB and closes at once, while the client stalls a few
 * milliseconds after every chunk. Tearing the tunnel down on the origin's close would drop what
 * the proxy still holds for the client. The PDP and the sink are in-process doubles of their
 * clients' shapes (test/egress.test.ts runs the real ones).
 */
import { connect, createServer, type Socket } from 'node:net';
import t from 'tap';
import { startEgressProxy } from '../src/index.js';

const SIZE = 8 * 1024 * 1024;

t.test('bytes the origin sent before closing all reach a slow client', { timeout: 30_000 }, async (tt) => {
  let originClosed!: () => void;
  const closed = new Promise<void>((r) => (originClosed = r));
  const origin = createServer((s) => {
    s.on('error', () => {});
    s.end(Buffer.alloc(SIZE, 7));
    s.on('close', () => originClosed());
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  tt.teardown(() => new Promise<void>((r) => origin.close(() => r())));
  const port = (origin.address() as { port: number }).port;
  const proxy = await startEgressProxy({
    listen: { host: '127.0.0.1', port: 0 },
    principal: { id: 't' },
    allowCidrs: ['127.0.0.0/8'],
    decide: async () => ({ decision: 'allow', reasons: [{ effect: 'allow', rule: 'r' }] }),
    audit: async () => ({ seq: 0, hash: '0'.repeat(64) }),
  });
  tt.teardown(() => proxy.close());

  const client: Socket = connect({ host: '127.0.0.1', port: proxy.address.port });
  client.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const head = await new Promise<Buffer>((resolve) => client.once('data', resolve));
  const end = head.indexOf('\r\n\r\n');
  tt.match(head.subarray(0, end).toString(), /^HTTP\/1\.1 200/);
  let got = head.length - end - 4;
  let originGone = false;
  void closed.then(() => (originGone = true));
  const total = await new Promise<number>((resolve) => {
    client.on('data', (d: Buffer) => {
      got += d.length;
      client.pause();
      setTimeout(() => client.resume(), 3);
    });
    client.on('error', () => {});
    client.on('close', () => resolve(got));
  });
  tt.ok(originGone, 'the origin had closed its side while the client was still reading');
  tt.equal(total, SIZE, 'every byte the origin sent arrived');
  client.destroy();
});
