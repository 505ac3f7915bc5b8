/**
 * A resolver that asks given DNS servers directly (A and AAAA in parallel) instead of the
 * system's getaddrinfo: for deployments that pin the proxy to a known resolver, and for the
 * rebinding tests, which answer from a real UDP server on loopback.
 */
import { Resolver } from 'node:dns/promises';
import { PcxError } from '@portcullis/protocol';
import type { Resolve } from './proxy.js';

const NO_ANSWER = new Set(['ENODATA', 'ENOTFOUND', 'ENONAME']);

export function dnsResolver(options: { servers: string[]; timeoutMs?: number }): Resolve {
  if (options.servers.length === 0)
    throw new PcxError('PCX_EGRESS_BAD_DNS', 'no DNS server given', { hint: 'use --dns 127.0.0.1:53' });
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 1 });
  try {
    resolver.setServers(options.servers);
  } catch (e) {
    throw new PcxError(
      'PCX_EGRESS_BAD_DNS',
      `invalid DNS server list ${JSON.stringify(options.servers)}: ${(e as Error).message}`,
      { hint: 'write ADDRESS or ADDRESS:PORT, e.g. 127.0.0.1:5353 or [::1]:53' },
    );
  }
  const family = async (query: Promise<string[]>): Promise<string[]> => {
    try {
      return await query;
    } catch (e) {
      if (NO_ANSWER.has((e as NodeJS.ErrnoException).code ?? '')) return [];
      throw e;
    }
  };
  return async (host) => {
    const [v4, v6] = await Promise.all([family(resolver.resolve4(host)), family(resolver.resolve6(host))]);
    return [...v4, ...v6];
  };
}
