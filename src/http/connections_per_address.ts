/**
 * Counts open connections per client address, to refuse an address that
 * already holds its share.
 *
 * @module
 */

/**
 * Open connections per address, bounded by `limit` (0 for no bound).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const connections = new ConnectionsPerAddress(1);
 * assertEquals(connections.tryOpen("203.0.113.7"), true);
 * assertEquals(connections.tryOpen("203.0.113.7"), false);
 * connections.closed("203.0.113.7");
 * assertEquals(connections.tryOpen("203.0.113.7"), true);
 * ```
 */
export class ConnectionsPerAddress {
  #limit: number;
  #open = new Map<string, number>();

  /** Bounds each address to `limit` open connections; 0 for no bound. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The bound, 0 for none. */
  get limit(): number {
    return this.#limit;
  }

  /** Counts a new connection from `address`; false, counting nothing, when it already holds `limit`. */
  tryOpen(address: string): boolean {
    const open = this.#open.get(address) ?? 0;
    if (this.#limit > 0 && open >= this.#limit) return false;
    this.#open.set(address, open + 1);
    return true;
  }

  /** Counts a connection from `address` as closed. */
  closed(address: string): void {
    const open = this.#open.get(address) ?? 0;
    if (open <= 1) this.#open.delete(address);
    else this.#open.set(address, open - 1);
  }

  /** Connections open from `address`. */
  openFrom(address: string): number {
    return this.#open.get(address) ?? 0;
  }
}
