/**
 * The one thing a call needs from a WebSocket, so that calls run the same over
 * Deno's WebSocket and over the in-memory pair tests use.
 *
 * @module
 */

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
  /** Bytes queued for sending and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** True until the socket starts closing. */
  readonly isOpen: boolean;
  /** Installs the handlers; frames that arrive before this are kept and delivered. */
  listen(handlers: SocketHandlers): void;
}

/** Adapts a server-side Deno `WebSocket` (already open or about to open) to {@linkcode Socket}. */
export function fromWebSocket(ws: WebSocket): Socket {
  ws.binaryType = "arraybuffer";
  const early: SocketMessage[] = [];
  let handlers: SocketHandlers | undefined;
  let closed: { code: number; reason: string } | undefined;
  ws.onmessage = (event: MessageEvent) => {
    const data = typeof event.data === "string"
      ? event.data
      : new Uint8Array(event.data);
    if (handlers) handlers.message(data);
    else early.push(data);
  };
  ws.onclose = (event: CloseEvent) => {
    closed = { code: event.code, reason: event.reason };
    handlers?.close(event.code, event.reason);
  };
  return {
    send(text) {
      if (ws.readyState === WebSocket.OPEN) ws.send(text);
    },
    close(code, reason) {
      if (
        ws.readyState === WebSocket.OPEN ||
        ws.readyState === WebSocket.CONNECTING
      ) {
        ws.close(code, reason);
      }
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    get isOpen() {
      return ws.readyState === WebSocket.OPEN ||
        ws.readyState === WebSocket.CONNECTING;
    },
    listen(installed) {
      handlers = installed;
      for (const data of early.splice(0)) installed.message(data);
      if (closed) installed.close(closed.code, closed.reason);
    },
  };
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
