/**
 * The one thing a call needs from a WebSocket, so that calls run the same over
 * Deno's WebSocket and over the in-memory pair tests use.
 *
 * @module
 */

import { type Cancel, type Clock, systemClock } from "./clock.ts";
import { releaseWebSocket } from "./release_websocket.ts";

/** What a socket delivers: text frames as strings, binary frames as bytes. */
export type SocketMessage = string | Uint8Array;

/** Callbacks a socket's owner installs. */
export interface SocketHandlers {
  /** Called for every frame received. */
  message(data: SocketMessage): void;
  /** Called once when the socket has closed, by either side. */
  close(code: number, reason: string): void;
}

/** A message-oriented, bidirectional socket. */
export interface Socket {
  /** Sends a text frame; dropped silently once the socket is closing. */
  send(text: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /**
   * Drops the connection now, without waiting for the peer's answer to a
   * close: for a peer that must not be read from any longer.
   */
  abort(): void;
  /** Bytes queued for sending and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** True until the socket starts closing. */
  readonly isOpen: boolean;
  /** Installs the handlers; frames that arrive before this are kept and delivered. */
  listen(handlers: SocketHandlers): void;
}

/** Close code reported for a connection that ended without a close frame. */
export const CLOSE_ABNORMAL = 1006;
/** Close code reported for a text frame that is not UTF-8. */
export const CLOSE_INVALID_PAYLOAD = 1007;

/** Options for {@linkcode fromWebSocket}. */
export interface WebSocketOptions {
  /**
   * How long a close we start may wait for the peer's answer before the
   * connection is dropped, in ms; 5000 by default.
   */
  closeTimeoutMs?: number;
  /** The clock that deadline runs on; the system clock by default. */
  clock?: Clock;
  /** Called when the connection is dropped without the peer's close (deadline passed, or {@linkcode Socket.abort}). */
  onReleased?(): void;
  /** Called once the connection is gone, however it ended. */
  onGone?(): void;
}

/**
 * Adapts a server-side Deno `WebSocket` (already open or about to open) to
 * {@linkcode Socket}.
 *
 * Deno reports a connection that ended without a close frame as code 0, and
 * drops the TCP connection itself on a text frame that is not UTF-8 (the peer
 * gets no 1007 close frame, and the runtime offers no way to send one): those
 * reach the handlers as 1006 and 1007, as RFC 6455 names them.
 */
export function fromWebSocket(
  ws: WebSocket,
  options: WebSocketOptions = {},
): Socket {
  const { closeTimeoutMs = 5000, clock = systemClock } = options;
  ws.binaryType = "arraybuffer";
  const early: SocketMessage[] = [];
  let handlers: SocketHandlers | undefined;
  let closed: { code: number; reason: string } | undefined;
  let error: string | undefined;
  let cancelDeadline: Cancel | undefined;
  ws.onmessage = (event: MessageEvent) => {
    const data = typeof event.data === "string"
      ? event.data
      : new Uint8Array(event.data);
    if (handlers) handlers.message(data);
    else early.push(data);
  };
  ws.onerror = (event: Event) => {
    error = event instanceof ErrorEvent ? event.message : undefined;
  };
  const release = () => {
    if (releaseWebSocket(ws)) options.onReleased?.();
  };
  ws.onclose = (event: CloseEvent) => {
    cancelDeadline?.();
    options.onGone?.();
    closed = closeOf(event, error);
    handlers?.close(closed.code, closed.reason);
  };
  const isOpen = () =>
    ws.readyState === WebSocket.OPEN ||
    ws.readyState === WebSocket.CONNECTING;
  return {
    send(text) {
      if (ws.readyState === WebSocket.OPEN) ws.send(text);
    },
    close(code, reason) {
      if (!isOpen()) return;
      ws.close(code, reason);
      // A peer that never answers would keep the connection for good.
      cancelDeadline = clock.schedule(release, closeTimeoutMs);
    },
    abort() {
      if (closed) return;
      cancelDeadline?.();
      // On the next turn of the event loop (a 0 ms timer, not a microtask),
      // so that a close frame just queued is written first.
      cancelDeadline = clock.schedule(release, 0);
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    get isOpen() {
      return isOpen();
    },
    listen(installed) {
      handlers = installed;
      for (const data of early.splice(0)) installed.message(data);
      if (closed) installed.close(closed.code, closed.reason);
    },
  };
}

/**
 * The close code and reason a Deno WebSocket's close event stands for: code 0
 * (no close frame) is 1006, or 1007 when the runtime dropped the connection
 * over a text frame that is not UTF-8 (`error` is the last error event's
 * message).
 */
function closeOf(
  event: CloseEvent,
  error: string | undefined,
): { code: number; reason: string } {
  if (event.code !== 0) return { code: event.code, reason: event.reason };
  return error === "Invalid UTF-8"
    ? { code: CLOSE_INVALID_PAYLOAD, reason: "invalid UTF-8" }
    : { code: CLOSE_ABNORMAL, reason: "" };
}

/** One end of an in-memory socket pair, with a settable `bufferedAmount` for tests. */
export interface MemorySocket extends Socket {
  /** What {@linkcode Socket.bufferedAmount} reports; tests set it to simulate a slow peer. */
  bufferedAmount: number;
  /** Sends a binary frame, which a real Exotel never does but a broken client might. */
  sendBinary(data: Uint8Array): void;
  /** Drops the connection with no closing handshake, as a vanished peer does. */
  drop(): void;
  /** Makes this end ignore the other's close, like a peer that never completes the handshake. */
  ignoreClose: boolean;
}

/**
 * Creates two connected in-memory sockets. Frames are delivered in order on a
 * later microtask, as a real socket delivers them on a later event.
 */
export function createSocketPair(): [MemorySocket, MemorySocket] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class MemoryEnd implements MemorySocket {
  peer?: MemoryEnd;
  bufferedAmount = 0;
  ignoreClose = false;
  #state: "open" | "closing" | "closed" = "open";
  #handlers?: SocketHandlers;
  #early: SocketMessage[] = [];
  #closeEvent?: { code: number; reason: string };

  get isOpen(): boolean {
    return this.#state === "open";
  }

  send(text: string): void {
    this.#transmit(text);
  }

  sendBinary(data: Uint8Array): void {
    this.#transmit(data);
  }

  close(code = 1000, reason = ""): void {
    if (this.#state !== "open") return;
    this.#state = "closing";
    const peer = this.peer;
    queueMicrotask(() => {
      if (!peer || peer.ignoreClose) return;
      peer.#finish(code, reason);
      this.#finish(code, reason);
    });
  }

  abort(): void {
    this.drop();
  }

  drop(): void {
    if (this.#state === "closed") return;
    const peer = this.peer;
    this.#state = "closing";
    queueMicrotask(() => {
      if (peer) peer.#finish(1006, "");
      this.#finish(1006, "");
    });
  }

  listen(handlers: SocketHandlers): void {
    this.#handlers = handlers;
    for (const data of this.#early.splice(0)) handlers.message(data);
    if (this.#closeEvent) {
      handlers.close(this.#closeEvent.code, this.#closeEvent.reason);
    }
  }

  #transmit(data: SocketMessage): void {
    if (this.#state !== "open") return;
    const peer = this.peer;
    if (peer) queueMicrotask(() => peer.#receive(data));
  }

  #receive(data: SocketMessage): void {
    if (this.#state === "closed") return;
    if (this.#handlers) this.#handlers.message(data);
    else this.#early.push(data);
  }

  #finish(code: number, reason: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#closeEvent = { code, reason };
    this.#handlers?.close(code, reason);
  }
}
