import { isIPv4, isIPv6 } from 'node:net';
import { UsageError } from './errors.js';

/** A normalised network: `203.0.113.7` → `203.0.113.7/32`, `2001:DB8:0::/32` → `2001:db8::/32`. */
export interface Cidr {
  family: 4 | 6;
  network: bigint;
  prefix: number;
  /** Canonical text (lower-case, RFC 5952 compressed IPv6) with the prefix. */
  text: string;
}

const BITS = { 4: 32, 6: 128 } as const;

function ipv4ToBigInt(address: string): bigint {
  return address.split('.').reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigInt(address: string): bigint {
  let text = address.toLowerCase();
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes its two hex groups.
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail?.[1]) {
    const v4 = ipv4ToBigInt(v4Tail[1]);
    text = `${text.slice(0, -v4Tail[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

function formatIpv6(value: bigint): string {
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => Number((value >> shift) & 0xffffn));
  // RFC 5952: the longest run (of two or more) of zero groups becomes "::", the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function describeFailure(input: string): string | Cidr {
  const parts = input.trim().split('/');
  if (parts.length > 2) return 'has more than one "/"';
  const [address = '', prefixText] = parts;
  if (address.includes('%')) return 'has an IPv6 zone index, which WAF does not take';
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined) return 'is not an IPv4 or IPv6 address';
  const bits = BITS[family];
  let prefix: number = bits;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) return `has prefix "/${prefixText}"; IPv${family} prefixes are /0 to /${bits}`;
    prefix = Number(prefixText);
  }
  const value = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const network = value & ~hostMask;
  const format = family === 4 ? formatIpv4 : formatIpv6;
  if ((value & hostMask) !== 0n) return `has host bits set: the /${prefix} network is ${format(network)}/${prefix}`;
  return { family, network, prefix, text: `${format(network)}/${prefix}` };
}

/** Parses an operator's CIDR or bare address; a usage error says exactly what is wrong with it. */
export function parseCidr(input: string): Cidr {
  const result = describeFailure(input);
  if (typeof result === 'string') throw new UsageError(`"${input}" ${result}`);
  return result;
}

/** Parses an entry already in an IP set; undefined for anything unreadable (left untouched). */
export function parseStoredCidr(input: string): Cidr | undefined {
  const result = describeFailure(input);
  return typeof result === 'string' ? undefined : result;
}

export function sameNetwork(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.network === b.network;
}
