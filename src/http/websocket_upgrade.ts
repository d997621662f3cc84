/**
 * Checks a WebSocket opening handshake (RFC 6455 §4.2.1) before it reaches
 * `Deno.upgradeWebSocket`, which throws on a missing `Sec-WebSocket-Key` or
 * `Connection: Upgrade` and accepts any `Sec-WebSocket-Version`. Pure.
 *
 * @module
 */

import { HttpError } from "./json.ts";

/** The only WebSocket version there is (RFC 6455). */
export const WEBSOCKET_VERSION = "13";

/**
 * Throws the 4xx a malformed or unsupported opening handshake deserves; the
 * request must already carry `Upgrade: websocket`.
 *
 * Deno does not tell a handler the HTTP version, so an HTTP/1.0 request is
 * refused only when it lacks the `Host` header that HTTP/1.1 and RFC 6455
 * require; one that sends it is indistinguishable from HTTP/1.1.
 *
 * @throws {HttpError} 400 `invalid_upgrade` for a wrong method, a missing
 * `Host`, a `Connection` without `Upgrade`, or a missing or malformed
 * `Sec-WebSocket-Key`; 426 `unsupported_websocket_version` with
 * `Sec-WebSocket-Version: 13` for any other version.
 * @example
 * ```ts
 * import { assertThrows } from "@std/assert";
 *
 * const headers = {
 *   host: "bot.example.com",
 *   upgrade: "websocket",
 *   connection: "Upgrade",
 *   "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 *   "sec-websocket-version": "13",
 * };
 * checkWebSocketHandshake(new Request("http://bot.example.com/ws", { headers }));
 * assertThrows(() =>
 *   checkWebSocketHandshake(
 *     new Request("http://bot.example.com/ws", {
 *       headers: { ...headers, "sec-websocket-version": "8" },
 *     }),
 *   )
 * );
 * ```
 */
export function checkWebSocketHandshake(request: Request): void {
  const { headers } = request;
  if (request.method !== "GET") {
    throw invalid(
      `Invalid WebSocket handshake: method "${request.method}", expected GET`,
    );
  }
  if (!headers.get("host")) {
    throw invalid(
      "Invalid WebSocket handshake: no Host header (HTTP/1.1 or later is required)",
    );
  }
  const connection = headers.get("connection") ?? "";
  if (
    !connection.split(",").some((token) =>
      token.trim().toLowerCase() === "upgrade"
    )
  ) {
    throw invalid(
      `Invalid WebSocket handshake: Connection "${
        connection.slice(0, 64)
      }" does not include Upgrade`,
    );
  }
  const version = headers.get("sec-websocket-version");
  if (version?.trim() !== WEBSOCKET_VERSION) {
    throw new HttpError(426, {
      code: "unsupported_websocket_version",
      message: `Unsupported Sec-WebSocket-Version "${
        (version ?? "").slice(0, 16)
      }": this server speaks ${WEBSOCKET_VERSION}`,
      headers: { "sec-websocket-version": WEBSOCKET_VERSION },
    });
  }
  const key = headers.get("sec-websocket-key")?.trim() ?? "";
  if (!isNonce(key)) {
    throw invalid(
      `Invalid WebSocket handshake: Sec-WebSocket-Key "${
        key.slice(0, 32)
      }" is not 16 bytes in base64`,
    );
  }
}

function isNonce(key: string): boolean {
  if (key.length !== 24) return false;
  try {
    return Uint8Array.fromBase64(key).length === 16;
  } catch {
    return false;
  }
}

function invalid(message: string): HttpError {
  return new HttpError(400, { code: "invalid_upgrade", message });
}
