/**
 * Releases a server-side Deno `WebSocket`'s connection at once.
 *
 * Deno 2.9 gives no public way to drop a WebSocket: `close()` sends a close
 * frame and then waits for the peer's answer, and a peer that never answers
 * keeps the TCP connection, and its descriptor, until the process ends
 * (denoland/deno#27924). The runtime's own idle timeout does not run once a
 * socket is closing. The WebSocket does keep its resource id under a private
 * symbol, and the runtime's `core` can close a resource by id: that frees the
 * descriptor and the peer sees the connection end. Both are internals, so
 * this looks them up defensively and reports whether it could.
 *
 * @module
 */

/** The parts of the runtime's internal `core` used here. */
interface RuntimeCore {
  tryClose(rid: number): void;
}

let cachedCore: RuntimeCore | null | undefined;

function runtimeCore(): RuntimeCore | undefined {
  if (cachedCore !== undefined) return cachedCore ?? undefined;
  const internalKey: unknown = Reflect.get(Deno, "internal");
  const internal: unknown = typeof internalKey === "symbol"
    ? Reflect.get(Deno, internalKey)
    : undefined;
  const core: unknown = typeof internal === "object" && internal !== null
    ? Reflect.get(internal, "core")
    : undefined;
  cachedCore = typeof core === "object" && core !== null &&
      typeof Reflect.get(core, "tryClose") === "function"
    ? core as RuntimeCore
    : null;
  return cachedCore ?? undefined;
}

function resourceId(ws: WebSocket): number | undefined {
  const symbol = Object.getOwnPropertySymbols(ws).find((candidate) =>
    candidate.description === "[[rid]]"
  );
  const rid: unknown = symbol ? Reflect.get(ws, symbol) : undefined;
  return typeof rid === "number" ? rid : undefined;
}

/**
 * Whether this runtime lets {@linkcode releaseWebSocket} drop a connection.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * // Deno 2.9 lets it; a runtime that does not makes the server close
 * // sockets the slow way instead.
 * assert(canReleaseWebSockets());
 * ```
 */
export function canReleaseWebSockets(): boolean {
  return runtimeCore() !== undefined;
}

/**
 * Closes `ws`'s connection now, without waiting for the peer: its descriptor
 * is released and its `close` event follows. Returns false when the runtime
 * offers no way to do it (then only the peer or the process ending frees it).
 */
export function releaseWebSocket(ws: WebSocket): boolean {
  const core = runtimeCore();
  const rid = resourceId(ws);
  if (!core || rid === undefined) return false;
  try {
    core.tryClose(rid);
    return true;
  } catch {
    return false;
  }
}
