/**
 * The floor the audit sink is measured against: the same socket, framing and group writes, and
 * the same bytes written, minus everything that makes it an audit log (validation, redaction,
 * canonical JSON, hash chain, Merkle tree, checkpoints). Each record frame's raw `record` text is
 * appended as one line; records arriving together go out in one write(); acks follow the write
 * (default) or an fdatasync (durable). Run: floor.ts SOCKET FILE [durable]
 */
import { createServer } from 'node:net';
import { writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { LineDecoder, encodeFrame } from '@portcullis/protocol';

const [socketPath, file, mode] = process.argv.slice(2) as [string, string, string | undefined];
const durable = mode === 'durable';
const fh = await open(file, 'a');
const ZERO = '0'.repeat(64);
let seq = 0;
let queue: { line: string; done: () => void }[] = [];
let busy = false;
let scheduled = false;

async function pump(): Promise<void> {
  busy = true;
  while (queue.length > 0) {
    const batch = queue;
    queue = [];
    // Written as the sink writes: synchronously in the default mode, async + fdatasync in durable.
    const data = batch.map((b) => b.line).join('\n') + '\n';
    if (durable) {
      await fh.write(data);
      await fh.datasync();
    } else writeSync(fh.fd, data);
    for (const b of batch) b.done();
  }
  busy = false;
}

createServer((socket) => {
  socket.on('error', () => socket.destroy());
  const d = new LineDecoder(
    (line) => {
      const f = JSON.parse(line) as { id: number; record?: unknown; health?: boolean };
      // The record's own text, as the sink would write a line of about this size.
      const text = JSON.stringify(f.record);
      const n = seq++;
      queue.push({ line: text, done: () => socket.write(encodeFrame({ id: f.id, ack: { seq: n, hash: ZERO } })) });
      if (!busy && !scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          void pump();
        });
      }
    },
    () => socket.destroy(),
  );
  socket.on('data', (c: Buffer) => d.push(c));
}).listen(socketPath, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => process.exit(0));
