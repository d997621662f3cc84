/**
 * `Deno.serve` that outlives its listener: when the runtime's accept loop
 * fails (most often "Too many open files" once every descriptor is taken),
 * `Deno.serve` closes the listening socket and rejects `finished`, which
 * would end the process. This keeps the connections already served, listens
 * again on the same address after a pause, and reports each failure.
 *
 * @module
 */

import { type Cancel, type Clock, systemClock } from "../call/clock.ts";

/** Why the listener stopped: `descriptors` (EMFILE, ENFILE) or `other`. */
export type ListenerFailureKind = "descriptors" | "other";

/** Options for {@linkcode serveResilient}. */
export interface ResilientServeOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port; 0 picks a free one, which later restarts keep. */
  port: number;
  /** PEM certificate, for TLS. */
  cert?: string;
  /** PEM key, for TLS. */
  key?: string;
  /** Wait before listening again after a failure, in ms; 1000 by default. */
  retryMs?: number;
  /** The clock the retry waits on; the system clock by default. */
  clock?: Clock;
  /** Called once, when the server first listens. */
  onListen?(addr: Deno.NetAddr): void;
  /** Called for each failure of the listener, before the retry. */
  onListenerFailed?(kind: ListenerFailureKind, error: unknown): void;
  /** Called each time the server listens again after a failure. */
  onListenerRestored?(): void;
}

/** A server that listens again after its listener fails. */
export interface ResilientServer {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Stops listening and ends every connection, as `Deno.HttpServer.shutdown` does. */
  shutdown(): Promise<void>;
}

const DESCRIPTOR_ERRORS = /too many open files|os error 2[34]\b/i;

/**
 * Tells a descriptor shortage (EMFILE: "Too many open files", ENFILE: the
 * system's table is full) from other listener failures.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   listenerFailureKind(new Error("Too many open files (os error 24)")),
 *   "descriptors",
 * );
 * assertEquals(listenerFailureKind(new Error("boom")), "other");
 * ```
 */
export function listenerFailureKind(error: unknown): ListenerFailureKind {
  const text = error instanceof Error ? error.message : String(error);
  return DESCRIPTOR_ERRORS.test(text) ? "descriptors" : "other";
}

/**
 * Serves `handler` like `Deno.serve`, but a failing accept loop does not end
 * the process: the server listens again on the same address `retryMs` later,
 * and keeps trying at that pace while it cannot.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const server = serveResilient(
 *   { hostname: "127.0.0.1", port: 0 },
 *   () => new Response("ok"),
 * );
 * const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
 * assertEquals(await response.text(), "ok");
 * await server.shutdown();
 * ```
 */
export function serveResilient(
  options: ResilientServeOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): ResilientServer {
  const retryMs = options.retryMs ?? 1000;
  const clock = options.clock ?? systemClock;
  const tls = options.cert !== undefined && options.key !== undefined
    ? { cert: options.cert, key: options.key }
    : {};
  // Servers whose listener failed still carry their connections: kept so
  // that shutdown ends those too.
  const servers = new Set<Deno.HttpServer<Deno.NetAddr>>();
  let stopping = false;
  let retry: Cancel | undefined;

  function listen(port: number): Deno.HttpServer<Deno.NetAddr> {
    const server = Deno.serve({
      hostname: options.hostname,
      port,
      ...tls,
      onListen() {},
    }, handler);
    servers.add(server);
    server.finished.then(
      () => servers.delete(server),
      (error: unknown) => {
        if (stopping) return;
        options.onListenerFailed?.(listenerFailureKind(error), error);
        scheduleRelisten();
      },
    );
    return server;
  }

  function scheduleRelisten(): void {
    if (stopping || retry !== undefined) return;
    retry = clock.schedule(() => {
      retry = undefined;
      if (stopping) return;
      try {
        listen(first.addr.port);
        options.onListenerRestored?.();
      } catch (error) {
        options.onListenerFailed?.(listenerFailureKind(error), error);
        scheduleRelisten();
      }
    }, retryMs);
  }

  const first = listen(options.port);
  options.onListen?.(first.addr);
  return {
    addr: first.addr,
    async shutdown() {
      stopping = true;
      retry?.();
      await Promise.allSettled([...servers].map((server) => server.shutdown()));
    },
  };
}
