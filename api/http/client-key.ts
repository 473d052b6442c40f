import { isIPv4, isIPv6 } from 'node:net';

/** IPv4 written inside IPv6 (`::ffff:192.0.2.1`, how a dual-stack socket reports an IPv4 peer). */
const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** The eight 16-bit groups of an IPv6 address (`::` expanded, an embedded IPv4 tail converted). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const v4Tail = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text)?.[1];
  if (v4Tail) {
    const [a, b, c, d] = v4Tail.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4Tail.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const front = parse(head);
  const back = tail === undefined ? [] : parse(tail);
  return [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/**
 * Who a client is, for rate limits and lock-outs: an IPv4 address as it is; an IPv6 address by
 * its /64 (`2001:db8:1:2::/64`). One subscriber, host or cloud instance gets a whole /64 (RFC
 * 6177, and SLAAC addresses are chosen by the host inside it), so counting single IPv6 addresses
 * would give one attacker 2^64 fresh budgets. The ALB is dual-stack: both families reach the API.
 */
export function clientKey(ip: string): string {
  const mapped = IPV4_MAPPED.exec(ip)?.[1];
  if (mapped && isIPv4(mapped)) return mapped;
  if (!isIPv6(ip)) return ip;
  const prefix = ipv6Groups(ip).slice(0, 4).map((group) => group.toString(16));
  return `${prefix.join(':')}::/64`;
}
