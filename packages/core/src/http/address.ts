import net from 'node:net';

const PRIVATE_V4 = new net.BlockList();
for (const [a, p] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) PRIVATE_V4.addSubnet(a, p, 'ipv4');

const PRIVATE_V6 = new net.BlockList();
// 64:ff9b:1::/48 is NAT64 for local use (RFC 8215): whatever it embeds is inside the operator's network.
for (const [a, p] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b:1::', 48], ['100::', 64]] as const) {
  PRIVATE_V6.addSubnet(a, p, 'ipv6');
}

/** The 16 bytes of an IPv6 address (zone id dropped; a trailing dotted quad read as the last 4 bytes). */
function ipv6Bytes(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number);
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => { const n = parseInt(g, 16); return [n >> 8, n & 255]; });
}

const quadOf = (b: number[]) => b.join('.');

/**
 * The IPv4 address an IPv6 address carries to the IPv4 network, where a gateway or the kernel may deliver it:
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:AABB:CCDD::) and
 * Teredo (2001:0::/32, client address inverted). `64:ff9b::a9fe:a9fe` is the metadata service through a NAT64 gateway.
 */
function embeddedIPv4(address: string): string | undefined {
  const b = ipv6Bytes(address);
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 10) && ((b[10] === 0xff && b[11] === 0xff) || (b[10] === 0 && b[11] === 0))) return quadOf(b.slice(12));
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return quadOf(b.slice(12));
  if (b[0] === 0x20 && b[1] === 0x02) return quadOf(b.slice(2, 6));
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0 && b[3] === 0) return quadOf(b.slice(12).map((x) => x ^ 0xff));
  return undefined;
}

/**
 * True for loopback, private, link-local (cloud metadata), CGNAT, multicast and reserved addresses, in IPv4 or
 * IPv6, including IPv6 addresses that embed such an IPv4 address. Anything that is not an IP address is true too.
 */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return PRIVATE_V4.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIPv4(address);
    if (v4 !== undefined && PRIVATE_V4.check(v4, 'ipv4')) return true;
    return PRIVATE_V6.check(address.replace(/%.*$/, ''), 'ipv6');
  }
  return true;
}
