/**
 * Who sent a request: the socket's peer, or behind reverse proxies you run,
 * the address your outermost proxy saw. Pure.
 *
 * A client can write any `X-Forwarded-For` it likes; each proxy appends the
 * address it received the request from. So only the right-most `hops`
 * entries were written by proxies we trust, and the entry `hops` from the
 * right is the address the outermost of them saw — what nginx's
 * `real_ip_recursive` and Express's numeric `trust proxy` pick. Entries to
 * its left are the client's own claims and are never used.
 *
 * @module
 */

/**
 * The entry of a comma-separated forwarding header (`X-Forwarded-For`,
 * `X-Forwarded-Host`, `X-Forwarded-Proto`) that the outermost of `hops`
 * trusted proxies wrote: the `hops`-th from the right, or the left-most when
 * the chain is shorter (the request came through fewer proxies, so the
 * left-most entry is what the first of them saw). Undefined for a missing or
 * blank header, or `hops` of 0.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * // The client wrote "10.1.2.3"; our one proxy appended the address it saw.
 * assertEquals(trustedForwardedValue("10.1.2.3, 8.8.8.8", 1), "8.8.8.8");
 * // CDN then load balancer: two hops.
 * assertEquals(trustedForwardedValue("10.1.2.3, 198.51.100.7, 172.16.0.4", 2), "198.51.100.7");
 * assertEquals(trustedForwardedValue("198.51.100.7", 2), "198.51.100.7");
 * assertEquals(trustedForwardedValue(null, 1), undefined);
 * ```
 */
export function trustedForwardedValue(
  header: string | null,
  hops: number,
): string | undefined {
  if (header === null || hops < 1) return undefined;
  const entries = header.split(",");
  const value = entries[Math.max(0, entries.length - hops)].trim();
  return value === "" ? undefined : value;
}

/** Options of {@linkcode clientAddress}. */
export interface ClientAddressOptions {
  /**
   * How many reverse proxies you run in front of the server (`TRUST_PROXY`);
   * 0 takes the socket's peer and ignores `X-Forwarded-For`.
   */
  trustedHops: number;
}

/**
 * The client's address for allow-lists and rate limits: `peer` (the socket's
 * remote address), or with trusted proxies the address the outermost one
 * saw, from `X-Forwarded-For`. A forwarded entry that is not an IP address
 * (a proxy misconfigured to pass something else) falls back to `peer`, so a
 * header can never produce an unbounded set of keys.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const spoofed = new Headers({ "x-forwarded-for": "10.1.2.3, 8.8.8.8" });
 * assertEquals(clientAddress(spoofed, "127.0.0.1", { trustedHops: 1 }), "8.8.8.8");
 * assertEquals(clientAddress(spoofed, "127.0.0.1", { trustedHops: 0 }), "127.0.0.1");
 * ```
 */
export function clientAddress(
  headers: Headers,
  peer: string,
  options: ClientAddressOptions,
): string {
  const forwarded = trustedForwardedValue(
    headers.get("x-forwarded-for"),
    options.trustedHops,
  );
  if (forwarded === undefined) return peer;
  return ipAddressOf(forwarded) ?? peer;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const BRACKETED_IPV6 = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/i;
const IPV6 = /^[0-9a-f:.]+$/i;

/** The IP address in a forwarded entry (port and brackets removed), or undefined. */
function ipAddressOf(entry: string): string | undefined {
  const address = IPV4_WITH_PORT.exec(entry)?.[1] ??
    BRACKETED_IPV6.exec(entry)?.[1] ?? entry;
  const v4 = IPV4.exec(address);
  if (v4) {
    return v4.slice(1).every((part) => Number(part) <= 255)
      ? address
      : undefined;
  }
  return address.includes(":") && address.length <= 45 && IPV6.test(address)
    ? address.toLowerCase()
    : undefined;
}
