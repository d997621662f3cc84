/**
 * Reports the listening socket's failures and recoveries: counted in the
 * metrics every time, logged at most once a minute.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Clock } from "./call/clock.ts";
import type { ExovoiceMetrics } from "./metrics/exovoice_metrics.ts";
import type { ListenerFailureKind } from "./http/resilient_server.ts";

const log = getLogger(["exovoice", "server"]);

/** How often, at most, a failing listener is logged. */
export const LISTENER_LOG_INTERVAL_MS = 60_000;

/** The callbacks `serveResilient` takes for its listener's failures. */
export interface ListenerReporter {
  /** Counts a failure of `kind`; logs it unless one was logged within the interval. */
  failed(kind: ListenerFailureKind, error: unknown): void;
  /** Marks the listener as back; logs it when its failure was logged. */
  restored(): void;
}

/**
 * Counts listener failures in `metrics` and logs them at most once per
 * {@linkcode LISTENER_LOG_INTERVAL_MS}: running out of descriptors fails the
 * listener again at every retry, and the log must not turn into a flood.
 *
 * @example
 * ```ts
 * import { assertStringIncludes } from "@std/assert";
 * import { systemClock } from "./call/clock.ts";
 * import { ExovoiceMetrics } from "./metrics/exovoice_metrics.ts";
 * import { listenerReporter } from "./listener_reporter.ts";
 *
 * const metrics = new ExovoiceMetrics({ version: "0.0.0", instanceId: "vm-1" });
 * const reporter = listenerReporter(metrics, systemClock);
 * reporter.failed("descriptors", new Error("Too many open files"));
 * assertStringIncludes(await metrics.render(), "\nexovoice_listening 0\n");
 * reporter.restored();
 * const text = await metrics.render();
 * assertStringIncludes(text, "\nexovoice_listening 1\n");
 * assertStringIncludes(text, 'exovoice_listener_failures_total{kind="descriptors"} 1\n');
 * ```
 */
export function listenerReporter(
  metrics: ExovoiceMetrics,
  clock: Clock,
): ListenerReporter {
  let loggedAt = -Infinity;
  let unlogged = 0;
  let restoreUnlogged = false;
  return {
    failed(kind, error) {
      metrics.connections.listenerFailed(kind);
      const now = clock.now();
      if (now - loggedAt < LISTENER_LOG_INTERVAL_MS) {
        unlogged++;
        return;
      }
      log.error(
        kind === "descriptors"
          ? "Out of file descriptors: not accepting connections, listening again in 1 s ({unlogged} more failures since the last report; raise the descriptor limit, see README)"
          : "The listener failed: listening again in 1 s ({unlogged} more failures since the last report): {error}",
        { unlogged, error: error instanceof Error ? error.message : error },
      );
      loggedAt = now;
      unlogged = 0;
      restoreUnlogged = true;
    },
    restored() {
      metrics.connections.listenerRestored();
      if (!restoreUnlogged) return;
      restoreUnlogged = false;
      log.info("Listening again");
    },
  };
}
