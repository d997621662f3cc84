/**
 * Metrics about connections rather than calls: the listener's failures
 * (most often descriptors running out), sockets dropped because their peer
 * never answered our close, connections refused per address, upgrades
 * refused by error code, and the process's descriptors (`process_open_fds`,
 * `process_max_fds`, the names Prometheus clients use).
 *
 * @module
 */

import type { Counter, Gauge, MetricsRegistry } from "./registry.ts";
import {
  countOpenDescriptors,
  readDescriptorLimit,
} from "./process_descriptors.ts";

/**
 * Connection metrics, declared on an existing registry.
 *
 * @example
 * ```ts
 * import { assertStringIncludes } from "@std/assert";
 * import { MetricsRegistry } from "./registry.ts";
 *
 * const registry = new MetricsRegistry();
 * const connections = new ConnectionMetrics(registry);
 * connections.listenerFailed("descriptors");
 * assertStringIncludes(await registry.render(), "\nexovoice_listening 0\n");
 * connections.listenerRestored();
 * const text = await registry.render();
 * assertStringIncludes(text, "\nexovoice_listening 1\n");
 * assertStringIncludes(text, 'exovoice_listener_failures_total{kind="descriptors"} 1\n');
 * assertStringIncludes(text, 'exovoice_listener_failures_total{kind="other"} 0\n');
 * ```
 */
export class ConnectionMetrics {
  #listenerFailures: Counter;
  #listening: Gauge;
  #released: Counter;
  #refused: Counter;
  #upgradesRefused: Counter;

  /** Declares the metrics on `registry`. */
  constructor(registry: MetricsRegistry) {
    this.#listenerFailures = registry.counter({
      name: "exovoice_listener_failures_total",
      help:
        "Times the listening socket failed and was reopened, by kind: descriptors (too many open files) or other.",
      labelNames: ["kind"],
    });
    for (const kind of ["descriptors", "other"]) {
      this.#listenerFailures.inc({ kind }, 0);
    }
    this.#listening = registry.gauge({
      name: "exovoice_listening",
      help:
        "1 while the server accepts connections, 0 while it waits to listen again after a failure.",
    });
    this.#listening.set({}, 1);
    this.#released = registry.counter({
      name: "exovoice_websockets_released_total",
      help:
        "Voicebot sockets dropped because the peer did not answer our close in time, or sent an oversized frame.",
    });
    this.#refused = registry.counter({
      name: "exovoice_connections_refused_total",
      help:
        "Voicebot upgrades refused because the address already holds MAX_CONNECTIONS_PER_IP sockets.",
    });
    this.#upgradesRefused = registry.counter({
      name: "exovoice_upgrades_refused_total",
      help:
        "Voicebot upgrades refused before a call began, by the error code answered (draining, forbidden, server_full, too_many_connections, upgrade_required, unauthorized, too_many_auth_failures, invalid_upgrade, unsupported_websocket_version, unknown_agent).",
      labelNames: ["code"],
    });
    const limit = readDescriptorLimit();
    if (limit !== undefined && countOpenDescriptors() !== undefined) {
      registry.gauge({
        name: "process_open_fds",
        help: "Open file descriptors.",
        collect: () => [{ labels: {}, value: countOpenDescriptors() ?? 0 }],
      });
      registry.gauge({
        name: "process_max_fds",
        help: "Maximum number of open file descriptors (the soft limit).",
        collect: () => [{ labels: {}, value: readDescriptorLimit() ?? limit }],
      });
    }
  }

  /** Counts a failure of the listening socket; the server is not listening until {@linkcode listenerRestored}. */
  listenerFailed(kind: "descriptors" | "other"): void {
    this.#listenerFailures.inc({ kind });
    this.#listening.set({}, 0);
  }

  /** Marks the server as listening again. */
  listenerRestored(): void {
    this.#listening.set({}, 1);
  }

  /** Counts a socket dropped without the peer's close. */
  socketReleased(): void {
    this.#released.inc();
  }

  /** Counts an upgrade refused for its address's connection count. */
  connectionRefused(): void {
    this.#refused.inc();
  }

  /** Counts a voicebot upgrade refused with the error `code` it was answered. */
  upgradeRefused(code: string): void {
    this.#upgradesRefused.inc({ code });
  }
}
