// The floor for bench/pdp: a trivial NDJSON server on a Unix socket that answers each line with
// the line itself (which carries the id the client waits for). Same framing (LineDecoder) and
// the same one-write-per-tick batching as the PDP, no parsing, no decision: what is left is
// the cost of the socket, the framing and the client.
import { createServer } from 'node:net';
import { LineDecoder } from '@portcullis/protocol';

const path = process.argv[2]!;
const server = createServer((socket) => {
  let out: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    socket.write(out.length === 1 ? out[0]! : out.join(''));
    out = [];
  };
  const decoder = new LineDecoder(
    (line) => {
      out.push(line + '\n');
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    },
    () => socket.destroy(),
  );
  socket.on('data', (c: Buffer) => decoder.push(c));
  socket.on('error', () => {});
});
server.listen(path, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
