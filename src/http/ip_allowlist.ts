/**
 * IP allow-lists from CIDR ranges, IPv4 and IPv6. Pure.
 *
 * @module
 */

/** A CIDR range that does not parse. */
export class InvalidCidrError extends Error {
  /** Creates the error for `cidr`. */
  constructor(cidr: string) {
    super(
      `Invalid IP range "${cidr}": expected an address or CIDR such as 203.0.113.0/24 or 2001:db8::/32`,
    );
    this.name = "InvalidCidrError";
  }
}

interface Range {
  bits: bigint;
  prefix: number;
  width: number;
}

/**
 * Addresses inside any of a list of CIDR ranges. IPv4-mapped IPv6 addresses
 * (`::ffff:1.2.3.4`, as dual-stack sockets report) match IPv4 ranges.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const list = new IpAllowList(["203.0.113.0/24"]);
 * assertEquals(list.allows("203.0.113.9"), true);
 * assertEquals(list.allows("::ffff:203.0.113.9"), true);
 * assertEquals(list.allows("198.51.100.1"), false);
 * ```
 */
export class IpAllowList {
  #ranges: Range[];

  /** Parses `cidrs`; a bare address is a range of one. */
  constructor(cidrs: string[]) {
    this.#ranges = cidrs.map(parseRange);
  }

  /** True when `address` is in one of the ranges. */
  allows(address: string): boolean {
    const parsed = parseAddress(address);
    if (!parsed) return false;
    return this.#ranges.some((range) =>
      range.width === parsed.width &&
      (parsed.bits >> BigInt(range.width - range.prefix)) ===
        (range.bits >> BigInt(range.width - range.prefix))
    );
  }
}

function parseRange(cidr: string): Range {
  const [address, prefixText, extra] = cidr.trim().split("/");
  const parsed = parseAddress(address);
  if (!parsed || extra !== undefined) throw new InvalidCidrError(cidr);
  const prefix = prefixText === undefined ? parsed.width : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? "0") || prefix > parsed.width) {
    throw new InvalidCidrError(cidr);
  }
  return { ...parsed, prefix };
}

function parseAddress(
  text: string,
): { bits: bigint; width: number } | undefined {
  const address = text.replace(/^\[|\]$/g, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return parseIpv4(mapped[1]);
  return address.includes(":") ? parseIpv6(address) : parseIpv4(address);
}

function parseIpv4(text: string): { bits: bigint; width: number } | undefined {
  const parts = text.split(".");
  if (
    parts.length !== 4 ||
    !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)
  ) {
    return undefined;
  }
  return {
    bits: parts.reduce((bits, part) => (bits << 8n) | BigInt(part), 0n),
    width: 32,
  };
}

function parseIpv6(text: string): { bits: bigint; width: number } | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const groups = [
    ...head,
    ...Array(halves.length === 2 ? missing : 0).fill("0"),
    ...tail,
  ];
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/i.test(group))) {
    return undefined;
  }
  return {
    bits: groups.reduce(
      (bits, group) => (bits << 16n) | BigInt(`0x${group}`),
      0n,
    ),
    width: 128,
  };
}
