/**
 * The floor: destinations refused below policy, whatever the policy says. An agent that can
 * reach loopback can talk to every sidecar in its pod (the PDP admin port, the proxy itself);
 * link-local reaches cloud metadata services and their credentials. Only an operator's explicit
 * `--allow-cidr` opts a range out; the proxy's own listening endpoints are never reachable.
 * Pure: the proxy passes in what it knows about itself.
 */
import { type Cidr, type Ip, cidrContains, embeddedIPv4, formatIp, parseCidr } from './address.js';

interface FloorRange {
  cidr: Cidr;
  why: string;
}

const BUILT_IN: ReadonlyArray<readonly [string, string]> = [
  ['0.0.0.0/8', 'unspecified ("this network") address'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata at 169.254.169.254)'],
  ['100.100.100.200/32', 'cloud metadata service (Alibaba)'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['::/128', 'unspecified address'],
  ['::1/128', 'loopback'],
  ['fe80::/10', 'link-local'],
  ['fd00:ec2::254/128', 'cloud metadata service (AWS IPv6)'],
  ['ff00::/8', 'multicast'],
];

export interface FloorOptions {
  /** Ranges the operator opted out of the floor (`--allow-cidr`). */
  allow?: Cidr[];
  /** Addresses of this host that the proxy listens on (its own addresses). */
  ownAddresses?: Ip[];
  /** Endpoints of the proxy itself (its listening ranges and ports): refused even when the range is opted out. */
  ownEndpoints?: Array<{ cidr: Cidr; port: number }>;
}

export interface FloorVerdict {
  /** Stable rule name for reasons and the X-Portcullis-Reason header. */
  rule: string;
  because: string;
}

export class Floor {
  private readonly ranges: FloorRange[];
  private readonly allow: Cidr[];
  private readonly ownEndpoints: Array<{ cidr: Cidr; port: number }>;

  constructor(options: FloorOptions = {}) {
    this.ranges = BUILT_IN.map(([cidr, why]) => ({ cidr: parseCidr(cidr), why }));
    for (const ip of options.ownAddresses ?? []) {
      this.ranges.push({ cidr: parseCidr(formatIp(ip)), why: "the proxy's own address" });
    }
    this.allow = options.allow ?? [];
    this.ownEndpoints = options.ownEndpoints ?? [];
  }

  /** Why `ip:port` is refused, or undefined when the floor lets it through to policy. */
  check(ip: Ip, port: number): FloorVerdict | undefined {
    for (const e of this.ownEndpoints) {
      if (e.port === port && cidrContains(e.cidr, ip)) {
        return { rule: 'floor:self', because: `${formatIp(ip)}:${port} is this proxy; it never connects to itself` };
      }
    }
    const direct = this.rangeFor(ip);
    if (direct) return direct;
    const inner = embeddedIPv4(ip);
    if (inner) {
      const embedded = this.rangeFor(inner);
      if (embedded)
        return { rule: embedded.rule, because: `${formatIp(ip)} embeds ${formatIp(inner)}: ${embedded.because}` };
    }
    return undefined;
  }

  private rangeFor(ip: Ip): FloorVerdict | undefined {
    for (const r of this.ranges) {
      if (!cidrContains(r.cidr, ip)) continue;
      if (this.allow.some((a) => cidrContains(a, ip))) return undefined;
      return {
        rule: 'floor',
        because:
          `${formatIp(ip)} is ${r.why} (${r.cidr.text}); refused below policy unless the operator opts it ` +
          `out with --allow-cidr`,
      };
    }
    return undefined;
  }
}
