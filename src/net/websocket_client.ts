/**
 * A WebSocket client (RFC 6455) over `Deno.connect` with `TCP_NODELAY` set.
 *
 * Deno's built-in `WebSocket` client leaves Nagle's algorithm on, and
 * offers no way to turn it off. A frame larger than one segment then
 * leaves a small tail that waits for the ACK of the segment before it:
 * up to a round trip (or a delayed-ACK timeout, ~40 ms on loopback) per
 * frame. For audio streamed to a speech-to-text vendor every 20 ms, that
 * delay lands on end-of-speech detection and so on every bot answer.
 * This client connects the TCP socket itself, calls `setNoDelay(true)`,
 * and for `wss:` starts TLS on that same socket so the option holds.
 *
 * It offers the part of the WHATWG `WebSocket` API our providers use:
 * construction with `(url, { headers, protocols })`, `binaryType`
 * (`"arraybuffer"` only), `onopen`, `onmessage`, `onerror` (an
 * `ErrorEvent` whose `error` is a {@linkcode WebSocketError} with the
 * status and body of a refused handshake), `onclose`, `readyState`,
 * `send`, `close` and `bufferedAmount`.
 *
 * Out of scope: HTTP proxies (`HTTP(S)_PROXY` is ignored, unlike Deno's
 * client), extensions such as permessage-deflate (never offered),
 * redirects, `Blob` messages, and `addEventListener`.
 *
 * @example
 * ```ts
 * const ws = new WebSocketClient("wss://api.example.com/listen", {
 *   headers: { Authorization: "Token secret" },
 * });
 * ws.onopen = () => ws.send(new Uint8Array(3200));
 * ws.onmessage = (event) => console.log(event.data);
 * ws.onclose = (event) => console.log("closed", event.code);
 * ```
 *
 * @module
 */

import {
  CLOSE_CODE,
  DEFAULT_MAX_MESSAGE_BYTES,
  encodeClosePayload,
  encodeFrame,
  FrameParser,
  type Message,
  MessageAssembler,
  OPCODE,
} from "./websocket_frame.ts";
import {
  acceptFor,
  checkUpgrade,
  handshakeKey,
  handshakeRequest,
  headEnd,
  parseResponseHead,
  responseBody,
  subprotocolList,
} from "./websocket_handshake.ts";
import { WebSocketError } from "./websocket_error.ts";

export { WebSocketError } from "./websocket_error.ts";

/** Options of a {@linkcode WebSocketClient}. */
export interface WebSocketClientOptions {
  /** Extra handshake headers, e.g. `Authorization`. */
  headers?: HeadersInit;
  /** Subprotocols to offer; the server must pick one of them. */
  protocols?: string | string[];
  /** Extra PEM root certificates for `wss:`, e.g. a test CA. */
  caCerts?: string[];
  /** Largest message (and frame) accepted; larger ones close with 1009. Default 16 MiB. */
  maxMessageBytes?: number;
  /**
   * How long a close may take: the server's answer to our close frame,
   * the flush of our close frame, or the body of a refused handshake.
   * The TCP connection is closed when it runs out. Default 5000 ms.
   */
  closeTimeoutMs?: number;
}

/** Default of {@linkcode WebSocketClientOptions.closeTimeoutMs}. */
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
/** Longest response head read before giving up on a handshake. */
const MAX_HEAD_BYTES = 16 * 1024;
/** Most of a refused handshake's body kept for the error. */
const MAX_BODY_BYTES = 4096;
/** The zero-size chunk that ends a chunked body, with its blank line. */
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
/** Size of each read from the connection. */
const READ_BYTES = 64 * 1024;

/**
 * A WebSocket client with Nagle's algorithm off; a drop-in for the part of
 * the WHATWG `WebSocket` API described in the module doc.
 *
 * Every path ends the same way: the TCP connection closed, no operation
 * left pending, `readyState` `CLOSED`, then `onerror` (only when something
 * failed) and `onclose`. A connection lost without a close frame reports
 * code 1006, as does one we failed for a protocol violation (after sending
 * the server a close frame with 1002, 1007 or 1009).
 */
export class WebSocketClient {
  /** The connection is being opened. */
  static readonly CONNECTING = 0;
  /** The connection is open. */
  static readonly OPEN = 1;
  /** A close frame was sent or received. */
  static readonly CLOSING = 2;
  /** The connection is closed. */
  static readonly CLOSED = 3;

  /** The URL connected to. */
  readonly url: string;
  /** Binary messages are delivered as `ArrayBuffer`; nothing else is supported. */
  binaryType: "arraybuffer" = "arraybuffer";
  /** Called once the handshake succeeded. */
  onopen: ((event: Event) => void) | null = null;
  /** Called for each message: text as `string`, binary as `ArrayBuffer`. */
  onmessage: ((event: MessageEvent<string | ArrayBuffer>) => void) | null =
    null;
  /** Called before `onclose` when the connection failed. */
  onerror: ((event: ErrorEvent) => void) | null = null;
  /** Called once, last, when the connection is closed. */
  onclose: ((event: CloseEvent) => void) | null = null;

  #url: URL;
  #headers: HeadersInit | undefined;
  #protocols: string[];
  #caCerts: string[] | undefined;
  #maxMessageBytes: number;
  #closeTimeoutMs: number;
  #protocol = "";
  #state: number = WebSocketClient.CONNECTING;
  #conn: Deno.Conn | undefined;
  #connClosed = false;
  #connectAbort = new AbortController();
  /** Encoded frames not yet written, each with its count of message bytes. */
  #writes: { bytes: Uint8Array; dataBytes: number }[] = [];
  #writer: Promise<void> | undefined;
  #writeFailed = false;
  #bufferedAmount = 0;
  #closeSent = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Why the connection failed, when it did; reported through `onerror`. */
  #failure: WebSocketError | undefined;

  /**
   * Starts connecting to `url` (`ws:` or `wss:`).
   *
   * @throws {SyntaxError} for an invalid URL or subprotocol list.
   */
  constructor(url: string | URL, options: WebSocketClientOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new SyntaxError(`Invalid WebSocket URL "${url}"`);
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new SyntaxError(
        `Invalid WebSocket URL "${url}": expected ws: or wss:`,
      );
    }
    if (parsed.hash) {
      throw new SyntaxError(
        `Invalid WebSocket URL "${url}": a fragment is not allowed`,
      );
    }
    this.#url = parsed;
    this.url = parsed.href;
    this.#headers = options.headers;
    this.#protocols = subprotocolList(options.protocols);
    this.#caCerts = options.caCerts;
    this.#maxMessageBytes = options.maxMessageBytes ??
      DEFAULT_MAX_MESSAGE_BYTES;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.#run();
  }

  /** One of `CONNECTING`, `OPEN`, `CLOSING`, `CLOSED`. */
  get readyState(): number {
    return this.#state;
  }

  /** Bytes of messages queued by `send` and not yet written to the socket. */
  get bufferedAmount(): number {
    return this.#bufferedAmount;
  }

  /** The subprotocol the server chose, `""` for none. */
  get protocol(): string {
    return this.#protocol;
  }

  /** Always `""`: no extension is ever negotiated. */
  get extensions(): string {
    return "";
  }

  /**
   * Queues `data` as one message: a string as text, bytes as binary. The
   * bytes are copied, so the caller may reuse its buffer. Dropped silently
   * once the connection is closing.
   *
   * @throws {DOMException} (`InvalidStateError`) while still connecting.
   */
  send(data: string | Uint8Array | ArrayBuffer): void {
    if (this.#state === WebSocketClient.CONNECTING) {
      throw new DOMException(
        "Cannot send on a WebSocket that is still connecting",
        "InvalidStateError",
      );
    }
    if (this.#state !== WebSocketClient.OPEN) return;
    const text = typeof data === "string";
    const payload = text
      ? new TextEncoder().encode(data)
      : data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : data;
    this.#enqueue(
      { opcode: text ? OPCODE.text : OPCODE.binary, payload },
      payload.length,
    );
  }

  /**
   * Starts the closing handshake, or abandons the connection while it is
   * still connecting. `onclose` follows once the server answered, or
   * after `closeTimeoutMs` at the latest.
   *
   * @throws {DOMException} (`InvalidAccessError`) for a code other than
   * 1000 or 3000–4999; (`SyntaxError`) for a reason over 123 bytes.
   */
  close(code?: number, reason?: string): void {
    if (
      code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)
    ) {
      throw new DOMException(
        `Invalid close code "${code}": expected 1000 or 3000-4999`,
        "InvalidAccessError",
      );
    }
    let payload: Uint8Array;
    try {
      payload = encodeClosePayload(code ?? (reason ? 1000 : undefined), reason);
    } catch (error) {
      throw new DOMException((error as Error).message, "SyntaxError");
    }
    if (this.#state === WebSocketClient.CONNECTING) {
      this.#state = WebSocketClient.CLOSING;
      this.#failure ??= new WebSocketError(
        "aborted",
        "The connection was closed before it opened",
      );
      this.#connectAbort.abort();
      this.#closeConn();
      return;
    }
    if (this.#state !== WebSocketClient.OPEN) return;
    this.#state = WebSocketClient.CLOSING;
    this.#sendClose(payload);
  }

  /** Connects, shakes hands, then reads until the connection ends. */
  async #run(): Promise<void> {
    let leftover: Uint8Array;
    try {
      const conn = await this.#connect();
      leftover = await this.#handshake(conn);
    } catch (error) {
      this.#failure ??= error instanceof WebSocketError
        ? error
        : new WebSocketError(
          "connect",
          `Could not connect to "${this.#where()}": ${messageOf(error)}`,
          { cause: error },
        );
      await this.#end(CLOSE_CODE.abnormal, "", false);
      return;
    }
    if (this.#state !== WebSocketClient.CONNECTING) {
      await this.#end(CLOSE_CODE.abnormal, "", false);
      return;
    }
    this.#state = WebSocketClient.OPEN;
    this.#dispatch(this.onopen, new Event("open"));
    await this.#read(leftover);
  }

  async #connect(): Promise<Deno.Conn> {
    const secure = this.#url.protocol === "wss:";
    const hostname = this.#url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(this.#url.port) || (secure ? 443 : 80);
    const tcp = await Deno.connect({
      hostname,
      port,
      signal: this.#connectAbort.signal,
    });
    if (this.#state !== WebSocketClient.CONNECTING) {
      tcp.close();
      throw this.#failure;
    }
    // The reason this module exists: send each frame as soon as it is
    // written instead of holding its tail for the previous segment's ACK.
    tcp.setNoDelay(true);
    if (!secure) {
      this.#conn = tcp;
      return tcp;
    }
    // startTls wraps this same socket, so TCP_NODELAY stays set.
    const tls = await Deno.startTls(tcp, {
      hostname,
      caCerts: this.#caCerts,
      alpnProtocols: ["http/1.1"],
    });
    this.#conn = tls;
    if (this.#state !== WebSocketClient.CONNECTING) {
      this.#closeConn();
      throw this.#failure;
    }
    await tls.handshake();
    return tls;
  }

  /** Sends the upgrade request and checks the answer; returns bytes read past it. */
  async #handshake(conn: Deno.Conn): Promise<Uint8Array> {
    const key = handshakeKey();
    await writeAll(
      conn,
      handshakeRequest(this.#url, {
        key,
        headers: this.#headers,
        protocols: this.#protocols,
      }),
    );
    let received: Uint8Array = new Uint8Array(0);
    let end = -1;
    const chunk = new Uint8Array(READ_BYTES);
    while (end < 0) {
      if (received.length > MAX_HEAD_BYTES) {
        throw new WebSocketError(
          "handshake",
          `Handshake response head from "${this.#where()}" exceeds ${MAX_HEAD_BYTES} bytes`,
        );
      }
      const n = await conn.read(chunk);
      if (n === null) {
        throw new WebSocketError(
          "handshake",
          `"${this.#where()}" closed the connection during the handshake`,
        );
      }
      received = append(received, chunk.subarray(0, n));
      end = headEnd(received);
    }
    const head = new TextDecoder().decode(received.subarray(0, end - 4));
    const response = parseResponseHead(head);
    const rest = received.subarray(end);
    if (response.status !== 101) {
      const body = await this.#readBody(conn, response.headers, rest);
      throw new WebSocketError(
        "handshake",
        `WebSocket handshake with "${this.#where()}" failed with status code: ${response.status}`,
        { status: response.status, body },
      );
    }
    this.#protocol = checkUpgrade(response, {
      accept: await acceptFor(key),
      protocols: this.#protocols,
    });
    return rest;
  }

  /** Reads the start of a refused handshake's body, bounded in size and time. */
  async #readBody(
    conn: Deno.Conn,
    headers: Headers,
    first: Uint8Array,
  ): Promise<string> {
    const chunked = /chunked/i.test(headers.get("transfer-encoding") ?? "");
    const declared = Number(headers.get("content-length") ?? NaN);
    const wanted = Math.min(
      MAX_BODY_BYTES,
      Number.isInteger(declared) && !chunked ? declared : MAX_BODY_BYTES,
    );
    let body = first;
    // Closing the connection ends a read from a server that sends no more.
    const timer = setTimeout(() => this.#closeConn(), this.#closeTimeoutMs);
    try {
      const chunk = new Uint8Array(READ_BYTES);
      while (body.length < wanted && !(chunked && endsWith(body, LAST_CHUNK))) {
        const n = await conn.read(chunk);
        if (n === null) break;
        body = append(body, chunk.subarray(0, n));
      }
    } catch {
      // The body only decorates the error; keep what arrived.
    } finally {
      clearTimeout(timer);
    }
    return responseBody(body.subarray(0, wanted), chunked);
  }

  /** Reads frames until the connection ends, then reports the end. */
  async #read(first: Uint8Array): Promise<void> {
    const conn = this.#conn as Deno.Conn;
    const parser = new FrameParser({ maxPayloadBytes: this.#maxMessageBytes });
    const assembler = new MessageAssembler({
      maxMessageBytes: this.#maxMessageBytes,
    });
    parser.push(first);
    const chunk = new Uint8Array(READ_BYTES);
    try {
      while (true) {
        for (let frame = parser.next(); frame; frame = parser.next()) {
          const message = assembler.push(frame);
          if (message?.type === "close") {
            await this.#answerClose(message);
            return;
          }
          if (message) this.#deliver(message);
        }
        const n = await conn.read(chunk);
        if (n === null) break;
        parser.push(chunk.subarray(0, n));
      }
      this.#failure ??= new WebSocketError(
        "connection",
        `"${this.#where()}" closed the connection without a close frame`,
      );
    } catch (error) {
      if (error instanceof WebSocketError) {
        this.#failure ??= error;
        // Tell the server why, without waiting for its answer (RFC 6455
        // section 7.1.7).
        this.#sendClose(encodeClosePayload(error.closeCode));
        await this.#flush();
      } else {
        this.#failure ??= new WebSocketError(
          "connection",
          `The connection to "${this.#where()}" failed: ${messageOf(error)}`,
          { cause: error },
        );
      }
    }
    await this.#end(CLOSE_CODE.abnormal, "", false);
  }

  #deliver(message: Exclude<Message, { type: "close" }>): void {
    switch (message.type) {
      case "ping":
        this.#enqueue({ opcode: OPCODE.pong, payload: message.data }, 0);
        return;
      case "pong":
        return;
      case "text":
        this.#dispatch(
          this.onmessage,
          new MessageEvent("message", { data: message.data }),
        );
        return;
      case "binary":
        this.#dispatch(
          this.onmessage,
          new MessageEvent("message", { data: message.data.buffer }),
        );
    }
  }

  /** The server closed: echo its close frame (unless we sent ours), then end. */
  async #answerClose(
    message: { code: number; reason: string },
  ): Promise<void> {
    this.#state = WebSocketClient.CLOSING;
    this.#sendClose(
      encodeClosePayload(
        message.code === CLOSE_CODE.noStatus ? undefined : message.code,
      ),
    );
    await this.#flush();
    await this.#end(message.code, message.reason, true);
  }

  /** Queues a close frame once, and bounds how long the close may take. */
  #sendClose(payload: Uint8Array): void {
    if (!this.#closeSent) {
      this.#enqueue({ opcode: OPCODE.close, payload }, 0);
      this.#closeSent = true;
    }
    this.#closeTimer ??= setTimeout(() => {
      this.#failure ??= new WebSocketError(
        "close_timeout",
        `"${this.#where()}" did not complete the close handshake within ${this.#closeTimeoutMs} ms`,
      );
      this.#closeConn();
    }, this.#closeTimeoutMs);
  }

  /** Masks and queues a frame; the one writer sends frames in order. */
  #enqueue(
    frame: { opcode: number; payload: Uint8Array },
    dataBytes: number,
  ): void {
    if (this.#writeFailed || this.#closeSent) return;
    const mask = crypto.getRandomValues(new Uint8Array(4));
    this.#writes.push({ bytes: encodeFrame(frame, mask), dataBytes });
    this.#bufferedAmount += dataBytes;
    this.#writer ??= this.#drain(this.#conn as Deno.Conn);
  }

  async #drain(conn: Deno.Conn): Promise<void> {
    try {
      for (let next = this.#writes.shift(); next; next = this.#writes.shift()) {
        await writeAll(conn, next.bytes);
        this.#bufferedAmount -= next.dataBytes;
      }
    } catch (error) {
      this.#writeFailed = true;
      this.#writes = [];
      this.#failure ??= new WebSocketError(
        "connection",
        `Could not write to "${this.#where()}": ${messageOf(error)}`,
        { cause: error },
      );
      // The reader may still find the server's close frame in what arrived
      // before the failure; the deadline ends a reader that finds nothing.
      if (!this.#connClosed) {
        this.#closeTimer ??= setTimeout(
          () => this.#closeConn(),
          this.#closeTimeoutMs,
        );
      }
    } finally {
      this.#writer = undefined;
    }
  }

  /** Resolves once every queued frame was written, or writing failed. */
  async #flush(): Promise<void> {
    while (this.#writer) await this.#writer;
  }

  /** Closes the connection, waits for pending I/O, then reports the close. */
  async #end(code: number, reason: string, wasClean: boolean): Promise<void> {
    clearTimeout(this.#closeTimer);
    this.#closeConn();
    await this.#flush();
    this.#writes = [];
    this.#state = WebSocketClient.CLOSED;
    const failure = wasClean ? undefined : this.#failure;
    if (failure) {
      this.#dispatch(
        this.onerror,
        new ErrorEvent("error", { message: failure.message, error: failure }),
      );
    }
    this.#dispatch(
      this.onclose,
      new CloseEvent("close", { code, reason, wasClean }),
    );
  }

  #closeConn(): void {
    if (!this.#conn || this.#connClosed) return;
    this.#connClosed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
  }

  #dispatch<T extends Event>(
    handler: ((event: T) => void) | null,
    event: T,
  ): void {
    try {
      handler?.call(this, event);
    } catch (error) {
      // As for Deno's WebSocket: a throwing handler is the caller's bug,
      // reported without breaking this connection.
      reportError(error);
    }
  }

  /** The URL without its query, which may carry credentials, for messages. */
  #where(): string {
    return `${this.#url.origin}${this.#url.pathname}`;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

function append(head: Uint8Array, tail: Uint8Array): Uint8Array {
  const joined = new Uint8Array(head.length + tail.length);
  joined.set(head);
  joined.set(tail, head.length);
  return joined;
}

function endsWith(bytes: Uint8Array, suffix: Uint8Array): boolean {
  if (bytes.length < suffix.length) return false;
  const tail = bytes.subarray(bytes.length - suffix.length);
  return tail.every((byte, i) => byte === suffix[i]);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
