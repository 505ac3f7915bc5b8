// The benchmark's upstream, in its own process so that it does not share an event loop with the
// load generator: an HTTP server answering a small fixed body (keep-alive), and a TCP server
// that streams N bytes (the bulk tunnel test: the client sends "N\n", the server sends N bytes).
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';

const body = Buffer.from('ok: a small response from the benchmark origin\n');
const http = createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
http.keepAliveTimeout = 60_000;
const chunk = Buffer.alloc(256 * 1024, 120);
const bulk = createTcpServer((socket) => {
  socket.on('error', () => socket.destroy());
  let line = '';
  socket.on('data', function onData(d) {
    line += d.toString('latin1');
    const nl = line.indexOf('\n');
    if (nl < 0) return;
    socket.off('data', onData);
    let left = Number(line.slice(0, nl));
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return socket.once('drain', pump);
      }
      socket.end();
    };
    pump();
  });
});
http.listen(0, '127.0.0.1', () => {
  bulk.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ http: http.address().port, bulk: bulk.address().port }) + '\n');
  });
});
process.on('SIGTERM', () => process.exit(0));
