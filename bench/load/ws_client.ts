/**
 * A lean WebSocket client (RFC 6455) over `Deno.connect`, for load runs.
 *
 * Deno's built-in `WebSocket` client leaves Nagle's algorithm on: a frame
 * written as header then payload waits for the peer's delayed ACK, adding
 * about 40 ms to every echo of a frame over about 1 KB on loopback. This
 * client sets `TCP_NODELAY`, writes each frame with one write, and costs
 * less per frame than the event-based `WebSocket`.
 *
 * Text frames only out; text, binary, ping, pong and close in. No
 * extensions, no TLS (the generator only dials 127.0.0.1).
 *
 * @module
 */

/** Callbacks of a {@linkcode WsClient}. */
export interface WsClientHandlers {
  /** A text frame arrived. */
  text(text: string): void;
  /** A binary frame arrived. */
  binary?(bytes: Uint8Array): void;
  /** The connection ended; 1006 when it ended without a close frame. */
  close(code: number, reason: string): void;
}

/** Error thrown when the handshake fails. */
export class WsConnectError extends Error {
  /** The HTTP status of a refused upgrade. */
  readonly status?: number;

  /** Creates the error. */
  constructor(message: string, status?: number) {
    super(message);
    this.name = "WsConnectError";
    this.status = status;
  }
}

/** Options of {@linkcode connectWs}. */
export interface WsConnectOptions {
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Handshake deadline (default 10000 ms). */
  timeoutMs?: number;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const READ_BYTES = 16 * 1024;
const CLOSE_WAIT_MS = 5000;
const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Opens a WebSocket to `url` (`ws://` only) and resolves once the server has
 * answered 101. Rejects with {@linkcode WsConnectError} otherwise.
 */
export async function connectWs(
  url: URL,
  options: WsConnectOptions = {},
): Promise<WsClient> {
  if (url.protocol !== "ws:") {
    throw new WsConnectError(`Unsupported URL "${url.href}": expected ws://`);
  }
  const conn = await Deno.connect({
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: Number(url.port || 80),
  });
  conn.setNoDelay(true);
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, options.timeoutMs ?? 10_000);
  try {
    const key = new Uint8Array(16);
    crypto.getRandomValues(key);
    const keyText = key.toBase64();
    const headers = Object.entries(options.headers ?? {})
      .map(([name, value]) => `${name}: ${value}\r\n`).join("");
    await writeAll(
      conn,
      encoder.encode(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${keyText}\r\nSec-WebSocket-Version: 13\r\n` +
          `${headers}\r\n`,
      ),
    );
    const { head, rest } = await readHead(conn);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    if (status !== 101) {
      throw new WsConnectError(
        `Upgrade refused with HTTP ${status || "?"}`,
        status,
      );
    }
    const accept = /^sec-websocket-accept:\s*(\S+)/im.exec(head)?.[1];
    const digest = await crypto.subtle.digest(
      "SHA-1",
      encoder.encode(keyText + GUID),
    );
    if (accept !== new Uint8Array(digest).toBase64()) {
      throw new WsConnectError(
        `Invalid Sec-WebSocket-Accept "${accept ?? ""}"`,
      );
    }
    return new WsClient(conn, rest);
  } catch (error) {
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
    if (error instanceof WsConnectError) throw error;
    throw new WsConnectError(
      `Handshake failed: ${error instanceof Error ? error.message : error}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

async function readHead(
  conn: Deno.Conn,
): Promise<{ head: string; rest: Uint8Array }> {
  let buffer = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  while (true) {
    const n = await conn.read(chunk);
    if (n === null) throw new WsConnectError("Connection closed in handshake");
    const grown = new Uint8Array(buffer.length + n);
    grown.set(buffer);
    grown.set(chunk.subarray(0, n), buffer.length);
    buffer = grown;
    const end = indexOfHeadEnd(buffer);
    if (end !== -1) {
      return {
        head: decoder.decode(buffer.subarray(0, end)),
        rest: buffer.slice(end + 4),
      };
    }
    if (buffer.length > 16 * 1024) {
      throw new WsConnectError("Handshake answer too long");
    }
  }
}

function indexOfHeadEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (
      bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 &&
      bytes[i + 3] === 10
    ) {
      return i;
    }
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
}

/** An open client WebSocket; see {@linkcode connectWs}. */
export class WsClient {
  #conn: Deno.Conn;
  #handlers?: WsClientHandlers;
  #buffer: Uint8Array;
  #start = 0;
  #end = 0;
  #fragments: Uint8Array[] = [];
  #fragmentOp = 0;
  #queue: Uint8Array[] = [];
  #writing = false;
  #closeSent = false;
  #ended = false;
  #closeCode = 1006;
  #closeReason = "";
  #closeTimer?: ReturnType<typeof setTimeout>;

  /** Wraps an upgraded connection; `rest` is what arrived after the handshake. */
  constructor(conn: Deno.Conn, rest: Uint8Array) {
    this.#conn = conn;
    this.#buffer = new Uint8Array(Math.max(READ_BYTES, rest.length * 2));
    this.#buffer.set(rest);
    this.#end = rest.length;
  }

  /** True until a close frame was sent or the connection ended. */
  get isOpen(): boolean {
    return !this.#closeSent && !this.#ended;
  }

  /** Starts reading; frames and the close are reported to `handlers`. */
  listen(handlers: WsClientHandlers): void {
    this.#handlers = handlers;
    this.#readLoop();
  }

  /** Sends a text frame; ignored once closing. */
  sendText(text: string): void {
    if (!this.isOpen) return;
    this.#queueFrame(OP_TEXT, text);
  }

  /** Starts the closing handshake; the connection is dropped if the server never answers. */
  close(code = 1000, reason = ""): void {
    if (this.#ended || this.#closeSent) return;
    this.#sendClose(code, reason);
    this.#closeTimer = setTimeout(() => this.#terminate(), CLOSE_WAIT_MS);
  }

  #sendClose(code: number, reason: string): void {
    this.#closeSent = true;
    const reasonBytes = encoder.encode(reason).subarray(0, 123);
    const body = new Uint8Array(2 + reasonBytes.length);
    body[0] = code >> 8;
    body[1] = code & 0xff;
    body.set(reasonBytes, 2);
    this.#queueFrame(OP_CLOSE, body);
  }

  #queueFrame(opcode: number, data: string | Uint8Array): void {
    this.#queue.push(maskedFrame(opcode, data));
    if (!this.#writing) this.#flush();
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        // Frames queued meanwhile go out in one write.
        const frames = this.#queue.splice(0);
        await writeAll(
          this.#conn,
          frames.length === 1 ? frames[0] : concat(frames),
        );
      }
    } catch {
      this.#terminate();
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    try {
      this.#parse();
      while (!this.#ended) {
        if (this.#end === this.#buffer.length) this.#makeRoom();
        const n = await this.#conn.read(this.#buffer.subarray(this.#end));
        if (n === null) break;
        this.#end += n;
        this.#parse();
      }
    } catch {
      // A reset or a close from our side ends the read.
    }
    this.#terminate();
  }

  #makeRoom(): void {
    const pending = this.#end - this.#start;
    if (this.#start > 0 && pending < this.#buffer.length / 2) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
    } else {
      const grown = new Uint8Array(this.#buffer.length * 2);
      grown.set(this.#buffer.subarray(this.#start, this.#end));
      this.#buffer = grown;
    }
    this.#start = 0;
    this.#end = pending;
  }

  #parse(): void {
    while (!this.#ended) {
      const buffer = this.#buffer;
      const available = this.#end - this.#start;
      if (available < 2) break;
      const at = this.#start;
      const first = buffer[at];
      const second = buffer[at + 1];
      let length = second & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (available < 4) break;
        length = (buffer[at + 2] << 8) | buffer[at + 3];
        offset = 4;
      } else if (length === 127) {
        if (available < 10) break;
        length = Number(
          new DataView(buffer.buffer, buffer.byteOffset + at + 2, 8)
            .getBigUint64(0),
        );
        offset = 10;
      }
      const masked = (second & 0x80) !== 0;
      const maskAt = at + offset;
      if (masked) offset += 4;
      if (available < offset + length) break;
      const payload = buffer.subarray(at + offset, at + offset + length);
      if (masked) {
        for (let i = 0; i < payload.length; i++) {
          payload[i] ^= buffer[maskAt + (i & 3)];
        }
      }
      this.#start = at + offset + length;
      this.#frame(first & 0x80 ? true : false, first & 0x0f, payload);
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  #frame(fin: boolean, opcode: number, payload: Uint8Array): void {
    if (opcode === OP_CLOSE) {
      this.#closeCode = payload.length >= 2
        ? (payload[0] << 8) | payload[1]
        : 1005;
      this.#closeReason = decoder.decode(payload.subarray(2));
      if (!this.#closeSent) this.#sendClose(this.#closeCode, "");
      // The server closes TCP after its close frame; leaving first would
      // put TIME_WAIT on the server's port, so only end when writes are done.
      this.#endAfterWrites();
      return;
    }
    if (opcode === OP_PING) {
      if (this.isOpen) this.#queueFrame(0xa, payload.slice());
      return;
    }
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (fin) return this.#deliver(opcode, payload);
      this.#fragmentOp = opcode;
      this.#fragments = [payload.slice()];
      return;
    }
    if (opcode === OP_CONTINUATION && this.#fragments.length > 0) {
      this.#fragments.push(payload.slice());
      if (fin) {
        const whole = concat(this.#fragments);
        this.#fragments = [];
        this.#deliver(this.#fragmentOp, whole);
      }
    }
  }

  #deliver(opcode: number, payload: Uint8Array): void {
    if (opcode === OP_TEXT) this.#handlers?.text(decoder.decode(payload));
    else this.#handlers?.binary?.(payload.slice());
  }

  async #endAfterWrites(): Promise<void> {
    while (this.#writing) await new Promise((resolve) => setTimeout(resolve));
    this.#terminate();
  }

  #terminate(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#closeTimer);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.#handlers?.close(this.#closeCode, this.#closeReason);
  }
}

/** Builds one masked client frame, header and payload in one buffer. */
function maskedFrame(opcode: number, data: string | Uint8Array): Uint8Array {
  let payload: Uint8Array;
  let payloadLength: number;
  if (typeof data === "string") {
    // Our frames are ASCII, so one byte per character is the usual case.
    payloadLength = data.length;
    payload = new Uint8Array(0);
  } else {
    payload = data;
    payloadLength = data.length;
  }
  let frame = allocate(payloadLength);
  if (typeof data === "string") {
    const { read, written } = encoder.encodeInto(
      data,
      frame.subarray(headerBytes(payloadLength)),
    );
    if (read !== data.length || written !== payloadLength) {
      payload = encoder.encode(data);
      payloadLength = payload.length;
      frame = allocate(payloadLength);
      frame.set(payload, headerBytes(payloadLength));
    }
  } else {
    frame.set(payload, headerBytes(payloadLength));
  }
  const header = headerBytes(payloadLength);
  frame[0] = 0x80 | opcode;
  if (payloadLength < 126) {
    frame[1] = 0x80 | payloadLength;
  } else if (payloadLength < 65536) {
    frame[1] = 0x80 | 126;
    frame[2] = payloadLength >> 8;
    frame[3] = payloadLength & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(payloadLength));
  }
  const mask = frame.subarray(header - 4, header);
  crypto.getRandomValues(mask);
  applyMask(frame, header, mask);
  return frame;
}

function headerBytes(payloadLength: number): number {
  return (payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10) + 4;
}

function allocate(payloadLength: number): Uint8Array {
  return new Uint8Array(headerBytes(payloadLength) + payloadLength);
}

/** XORs the payload from `from` with `mask`, four bytes at a time where aligned. */
function applyMask(frame: Uint8Array, from: number, mask: Uint8Array): void {
  let i = from;
  if (from % 4 === 0) {
    const words = (frame.length - from) >> 2;
    const view = new Uint32Array(frame.buffer, from, words);
    const key = new Uint32Array(mask.slice().buffer)[0];
    for (let w = 0; w < words; w++) view[w] ^= key;
    i = from + words * 4;
  }
  for (; i < frame.length; i++) frame[i] ^= mask[(i - from) & 3];
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const whole = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    whole.set(part, at);
    at += part.length;
  }
  return whole;
}
