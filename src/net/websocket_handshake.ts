/**
 * The client side of the RFC 6455 opening handshake with no I/O: the
 * request's bytes, the response head's parsing, and the checks that make
 * a `101` an accepted upgrade.
 *
 * @module
 */

import { WebSocketError } from "./websocket_error.ts";

/** The GUID RFC 6455 section 1.3 appends to the key. */
const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Headers the handshake sets itself; callers' values for them are ignored. */
const RESERVED_HEADERS = new Set([
  "host",
  "upgrade",
  "connection",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
]);

/** RFC 7230 `token` characters, which a subprotocol name must use. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A fresh `Sec-WebSocket-Key`: 16 random bytes in base64. */
export function handshakeKey(): string {
  return crypto.getRandomValues(new Uint8Array(16)).toBase64();
}

/**
 * The `Sec-WebSocket-Accept` a server must answer `key` with.
 *
 * @example
 * ```ts
 * await acceptFor("dGhlIHNhbXBsZSBub25jZQ=="); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 * ```
 */
export async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + ACCEPT_GUID),
  );
  return new Uint8Array(digest).toBase64();
}

/**
 * The subprotocols as a list, checked the way the WHATWG `WebSocket`
 * constructor checks them.
 *
 * @throws {SyntaxError} for a name that is not a token, or a duplicate.
 */
export function subprotocolList(protocols?: string | string[]): string[] {
  const list = protocols === undefined
    ? []
    : typeof protocols === "string"
    ? [protocols]
    : protocols;
  const seen = new Set<string>();
  for (const protocol of list) {
    if (!TOKEN.test(protocol)) {
      throw new SyntaxError(
        `Invalid subprotocol "${protocol}": expected an HTTP token`,
      );
    }
    if (seen.has(protocol.toLowerCase())) {
      throw new SyntaxError(`Invalid subprotocol "${protocol}": duplicated`);
    }
    seen.add(protocol.toLowerCase());
  }
  return [...list];
}

/** Options of {@linkcode handshakeRequest}. */
export interface HandshakeRequestOptions {
  /** From {@linkcode handshakeKey}. */
  key: string;
  /** Extra headers, e.g. `Authorization`. */
  headers?: HeadersInit;
  /** Subprotocols to offer, from {@linkcode subprotocolList}. */
  protocols?: string[];
}

/**
 * The bytes of the upgrade request for `url` (`ws:` or `wss:`).
 *
 * @throws {TypeError} for a header value that cannot be sent.
 */
export function handshakeRequest(
  url: URL,
  options: HandshakeRequestOptions,
): Uint8Array {
  const target = `${url.pathname || "/"}${url.search}`;
  const lines = [
    `GET ${target} HTTP/1.1`,
    `Host: ${url.host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${options.key}`,
    "Sec-WebSocket-Version: 13",
  ];
  if (options.protocols?.length) {
    lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(", ")}`);
  }
  // Headers validates names and values: no CR/LF can reach the wire.
  for (const [name, value] of new Headers(options.headers)) {
    if (!RESERVED_HEADERS.has(name)) lines.push(`${name}: ${value}`);
  }
  return new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
}

/** The status line and headers of the handshake's response. */
export interface HandshakeResponse {
  /** The HTTP status, `101` when the server upgraded. */
  status: number;
  /** The response's headers. */
  headers: Headers;
}

/** Where the head ends in `bytes`: the index after `\r\n\r\n`, or -1. */
export function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (
      bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 &&
      bytes[i - 3] === 13
    ) {
      return i + 1;
    }
  }
  return -1;
}

/**
 * Parses a response head (status line and header lines, without the blank
 * line).
 *
 * @throws {WebSocketError} (`handshake`) when it is not HTTP/1.1.
 */
export function parseResponseHead(head: string): HandshakeResponse {
  const [statusLine, ...lines] = head.replace(/\r\n$/, "").split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
  if (!match) {
    throw new WebSocketError(
      "handshake",
      `Invalid handshake response "${
        statusLine.slice(0, 100)
      }": expected an HTTP/1.1 status line`,
    );
  }
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    try {
      if (colon <= 0) throw new TypeError("missing colon");
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch (cause) {
      throw new WebSocketError(
        "handshake",
        `Invalid handshake response header "${line.slice(0, 100)}"`,
        { cause },
      );
    }
  }
  return { status: Number(match[1]), headers };
}

/** Options of {@linkcode checkUpgrade}. */
export interface CheckUpgradeOptions {
  /** From {@linkcode acceptFor} of the key sent. */
  accept: string;
  /** The subprotocols offered. */
  protocols: string[];
}

/**
 * Checks that a `101` response accepts the upgrade we asked for, and
 * returns the subprotocol the server chose (`""` for none).
 *
 * @throws {WebSocketError} (`handshake`) naming the first thing wrong.
 */
export function checkUpgrade(
  response: HandshakeResponse,
  options: CheckUpgradeOptions,
): string {
  const { headers } = response;
  const fail = (message: string) => new WebSocketError("handshake", message);
  if (response.status !== 101) {
    throw fail(`Invalid handshake status "${response.status}": expected 101`);
  }
  const upgrade = headers.get("upgrade") ?? "";
  if (upgrade.toLowerCase() !== "websocket") {
    throw fail(`Invalid Upgrade header "${upgrade}": expected "websocket"`);
  }
  const connection = headers.get("connection") ?? "";
  const tokens = connection.toLowerCase().split(",").map((token) =>
    token.trim()
  );
  if (!tokens.includes("upgrade")) {
    throw fail(`Invalid Connection header "${connection}": expected "Upgrade"`);
  }
  const accept = headers.get("sec-websocket-accept") ?? "";
  if (accept !== options.accept) {
    throw fail(
      `Invalid Sec-WebSocket-Accept "${accept}": expected "${options.accept}"`,
    );
  }
  const extensions = headers.get("sec-websocket-extensions");
  if (extensions) {
    throw fail(
      `Invalid Sec-WebSocket-Extensions "${extensions}": none were offered`,
    );
  }
  const protocol = headers.get("sec-websocket-protocol") ?? "";
  if (protocol && !options.protocols.includes(protocol)) {
    throw fail(
      `Invalid Sec-WebSocket-Protocol "${protocol}": expected one of ${
        JSON.stringify(options.protocols)
      }`,
    );
  }
  if (!protocol && options.protocols.length > 0) {
    throw fail(
      `Missing Sec-WebSocket-Protocol: expected one of ${
        JSON.stringify(options.protocols)
      }`,
    );
  }
  return protocol;
}

/**
 * The body of a refused handshake from its raw bytes, undoing chunked
 * transfer coding when `chunked`; an incomplete chunk is kept as far as it
 * goes, since the body is read only up to a cap.
 */
export function responseBody(bytes: Uint8Array, chunked: boolean): string {
  const decoder = new TextDecoder();
  if (!chunked) return decoder.decode(bytes);
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const lineEnd = bytes.indexOf(10, at);
    if (lineEnd < 0) break;
    const size = parseInt(decoder.decode(bytes.subarray(at, lineEnd)), 16);
    if (!Number.isFinite(size) || size <= 0) break;
    parts.push(bytes.subarray(lineEnd + 1, lineEnd + 1 + size));
    at = lineEnd + 1 + size + 2;
  }
  return parts.map((part) => decoder.decode(part, { stream: true })).join("") +
    decoder.decode();
}
