// The sink's socket under clients that misbehave, in-process over a real Unix socket: ids must be
// safe integers or short strings (string ids are echoed; a float or 2^53+1 closes the
// connection), and a client that does not read its acks is not read from (the sink used to keep
// reading, queueing records and acks for it without bound).
import t from 'tap';
import { createConnection, type Socket } from 'node:net';
import { raw, sampleRecord, startSink } from './helpers.js';

t.test('string ids are echoed on acks and errors; unsafe numbers and long strings close the connection', async (t) => {
  const s = await startSink(t);
  const rec = JSON.stringify(sampleRecord(1));
  const ok = await raw(
    s.socketPath,
    `{"id":"a-1","record":${rec}}\n{"id":"a-2","record":{}}\n{"id":${Number.MAX_SAFE_INTEGER},"health":true}\n`,
    3,
  );
  // Answers may come out of order (an ack waits for the write, an error does not).
  const byId = new Map(ok.frames.map((f) => [f.id, f]));
  t.match(byId.get('a-1'), { ack: { seq: 0 } });
  t.match(byId.get('a-2'), { error: { code: 'PCX_AUDIT_INVALID_RECORD' } });
  t.match(byId.get(Number.MAX_SAFE_INTEGER), { health: { mode: 'default' } });
  for (const id of ['1.5', '9007199254740993', '1e400', JSON.stringify('x'.repeat(257))]) {
    const r = await raw(s.socketPath, `{"id":${id},"record":${rec}}\n`, 1);
    t.match(
      r.frames[0],
      { id: null, error: { code: 'PCX_AUDIT_BAD_FRAME', message: /safe integer/ } },
      id.slice(0, 20),
    );
    t.ok(r.closed, `${id.slice(0, 20)}: connection closed`);
  }
  t.equal(s.log.state.size, 1, 'no record with a bad id was written');
});

/** Resolves once `check` holds, polling; fails after `ms`. */
async function until(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('a client that does not read its acks is not read from; once it reads, every record is acked', async (t) => {
  const s = await startSink(t);
  const total = 20_000;
  const line = (i: number) => `{"id":${i},"record":${JSON.stringify(sampleRecord(i))}}\n`;
  const c: Socket = createConnection({ path: s.socketPath });
  t.teardown(() => c.destroy());
  await new Promise<void>((r) => c.once('connect', () => r()));
  c.pause(); // never read, for now
  // About 6 MB of records, all written at once (the client's own buffer holds what the kernel does not take).
  let all = '';
  for (let i = 0; i < total; i++) all += line(i);
  c.write(all);
  // The sink writes what it read, then stops reading: the log stops growing well short of the total.
  let last = -1;
  let still = 0;
  await until(() => {
    const size = s.log.state.size;
    still = size === last ? still + 1 : 0;
    last = size;
    return size > 0 && still >= 25;
  }, 30_000);
  const stalled = s.log.state.size;
  t.ok(stalled < total / 2, `the sink stopped after ${stalled} of ${total} records`);
  t.ok(c.writableLength > 0, 'the client is left holding the rest');
  // Read again: the sink resumes, and every record gets its ack, in order.
  let buf = '';
  let acks = 0;
  let next = 0;
  let wrong = 0;
  c.setEncoding('utf8');
  c.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const f = JSON.parse(buf.slice(0, nl)) as { id: number; ack?: { seq: number } };
      buf = buf.slice(nl + 1);
      if (f.id !== next || f.ack?.seq !== next) wrong++;
      next++;
      acks++;
    }
  });
  c.resume();
  await until(() => acks === total, 60_000);
  t.equal(wrong, 0, 'each ack answers its record');
  t.equal(s.log.state.size, total);
});
