/**
 * The error a {@linkcode WebSocketClient} reports, whatever went wrong.
 *
 * @module
 */

/** What went wrong on a WebSocket client connection. */
export type WebSocketErrorCode =
  /** The TCP connection or the TLS handshake failed. */
  | "connect"
  /** The server refused the upgrade or answered it wrongly. */
  | "handshake"
  /** The server broke RFC 6455; {@linkcode WebSocketError.closeCode} says how. */
  | "protocol"
  /** The connection broke without a close frame. */
  | "connection"
  /** The server did not answer our close frame before the deadline. */
  | "close_timeout"
  /** `close()` was called before the connection opened. */
  | "aborted";

/** Options of a {@linkcode WebSocketError}. */
export interface WebSocketErrorOptions {
  /** HTTP status of a refused handshake. */
  status?: number;
  /** The start of a refused handshake's response body. */
  body?: string;
  /** The close code sent to a server that broke the protocol. */
  closeCode?: number;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A failed WebSocket client connection, delivered as the `error` of the
 * `ErrorEvent` that precedes the close event.
 *
 * @example
 * ```ts
 * ws.onerror = (event) => {
 *   if (event.error instanceof WebSocketError && event.error.status === 401) {
 *     console.log("bad credentials:", event.error.body);
 *   }
 * };
 * ```
 */
export class WebSocketError extends Error {
  /** What went wrong. */
  readonly code: WebSocketErrorCode;
  /** HTTP status of a refused handshake (`code` is `handshake`). */
  readonly status?: number;
  /** The start of a refused handshake's body, decoded as UTF-8. */
  readonly body?: string;
  /** The close code we sent for a protocol violation (`code` is `protocol`). */
  readonly closeCode?: number;

  /** Creates the error. */
  constructor(
    code: WebSocketErrorCode,
    message: string,
    options: WebSocketErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "WebSocketError";
    this.code = code;
    this.status = options.status;
    this.body = options.body;
    this.closeCode = options.closeCode;
  }
}
