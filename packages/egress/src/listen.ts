import type { Server } from 'node:http';
import { PcxError } from '@portcullis/protocol';

/** Listen, turning "address in use" and friends into a PcxError that says what to do. */
export function listenOn(server: Server, listen: { host: string; port: number }, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
      reject(
        new PcxError('PCX_EGRESS_LISTEN', `${what} cannot listen on ${where}: ${e.code ?? e.message}`, {
          hint: e.code === 'EADDRINUSE' ? 'another process uses that port; choose another one' : 'check the address',
        }),
      );
    });
    server.listen(listen.port, listen.host, () => resolve());
  });
}
