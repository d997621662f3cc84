/**
 * RFC 6455 framing with no I/O: encoding frames, parsing a byte stream
 * into frames, and assembling frames into messages. Both directions are
 * here so that test peers can speak the server side with the same code.
 *
 * @example
 * ```ts
 * const mask = crypto.getRandomValues(new Uint8Array(4));
 * const bytes = encodeFrame(
 *   { fin: true, opcode: OPCODE.text, payload: new TextEncoder().encode("hi") },
 *   mask,
 * );
 * const parser = new FrameParser({ masked: true });
 * parser.push(bytes);
 * parser.next(); // { fin: true, opcode: 1, payload: "hi" as bytes }
 * ```
 *
 * @module
 */

import { concat } from "@std/bytes";
import { WebSocketError } from "./websocket_error.ts";

/** Frame opcodes (RFC 6455 section 5.2). */
export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Close codes this module sends (RFC 6455 section 7.4.1). */
export const CLOSE_CODE = {
  normal: 1000,
  protocolError: 1002,
  noStatus: 1005,
  abnormal: 1006,
  invalidData: 1007,
  tooBig: 1009,
} as const;

/** One frame, its payload unmasked. */
export interface Frame {
  /** Whether this is the last frame of its message. */
  fin: boolean;
  /** One of {@linkcode OPCODE}. */
  opcode: number;
  /** The payload, unmasked. */
  payload: Uint8Array<ArrayBuffer>;
}

/** A complete message, or a control frame, as the peer sent it. */
export type Message =
  | { type: "text"; data: string }
  | { type: "binary"; data: Uint8Array<ArrayBuffer> }
  | { type: "ping"; data: Uint8Array<ArrayBuffer> }
  | { type: "pong"; data: Uint8Array<ArrayBuffer> }
  | { type: "close"; code: number; reason: string };

/** Default cap on a frame and on a message: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Longest control frame payload. */
const MAX_CONTROL_PAYLOAD = 125;

const KNOWN_OPCODES = new Set<number>(Object.values(OPCODE));

/**
 * The frame's bytes: header, then the payload masked with `mask` (four
 * bytes; a client must pass a fresh random one per frame) or unmasked
 * when `mask` is omitted (server side).
 *
 * @throws {RangeError} when `mask` is not four bytes.
 */
export function encodeFrame(
  frame: Frame | { fin?: boolean; opcode: number; payload: Uint8Array },
  mask?: Uint8Array,
): Uint8Array<ArrayBuffer> {
  if (mask && mask.length !== 4) {
    throw new RangeError(
      `Invalid mask length "${mask.length}": expected 4 bytes`,
    );
  }
  const { payload } = frame;
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const headerLength = 2 + lengthBytes + (mask ? 4 : 0);
  const bytes = new Uint8Array(headerLength + length);
  const view = new DataView(bytes.buffer);
  bytes[0] = (frame.fin === false ? 0 : 0x80) | frame.opcode;
  const maskBit = mask ? 0x80 : 0;
  if (lengthBytes === 0) {
    bytes[1] = maskBit | length;
  } else if (lengthBytes === 2) {
    bytes[1] = maskBit | 126;
    view.setUint16(2, length);
  } else {
    bytes[1] = maskBit | 127;
    view.setBigUint64(2, BigInt(length));
  }
  if (!mask) {
    bytes.set(payload, headerLength);
    return bytes;
  }
  bytes.set(mask, headerLength - 4);
  for (let i = 0; i < length; i++) {
    bytes[headerLength + i] = payload[i] ^ mask[i & 3];
  }
  return bytes;
}

/** Options of a {@linkcode FrameParser}. */
export interface FrameParserOptions {
  /**
   * Whether frames must be masked: `false` (default) when parsing what a
   * server sends, `true` when parsing what a client sends.
   */
  masked?: boolean;
  /** Largest payload accepted, default {@linkcode DEFAULT_MAX_MESSAGE_BYTES}. */
  maxPayloadBytes?: number;
}

/**
 * Turns a byte stream, pushed in chunks of any size, into frames.
 *
 * {@linkcode FrameParser.next} throws a `protocol` {@linkcode WebSocketError}
 * with the close code to send when the stream breaks the protocol; the
 * parser is unusable after that.
 */
export class FrameParser {
  #masked: boolean;
  #maxPayloadBytes: number;
  #buffer = new Uint8Array(4096);
  #start = 0;
  #end = 0;

  /** Creates a parser with an empty buffer. */
  constructor(options: FrameParserOptions = {}) {
    this.#masked = options.masked ?? false;
    this.#maxPayloadBytes = options.maxPayloadBytes ??
      DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** Bytes pushed and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /** Appends `chunk` (copied: the caller may reuse it). */
  push(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buffer.length) {
      const held = this.#end - this.#start;
      if (held + chunk.length > this.#buffer.length) {
        const grown = new Uint8Array(
          Math.max(held + chunk.length, this.#buffer.length * 2),
        );
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      } else {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      }
      this.#start = 0;
      this.#end = held;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** The next complete frame, or `undefined` until more bytes arrive. */
  next(): Frame | undefined {
    const available = this.#end - this.#start;
    if (available < 2) return undefined;
    const bytes = this.#buffer;
    const at = this.#start;
    const fin = (bytes[at] & 0x80) !== 0;
    const opcode = bytes[at] & 0x0f;
    if ((bytes[at] & 0x70) !== 0) {
      throw protocolError("Received a frame with reserved bits set");
    }
    if (!KNOWN_OPCODES.has(opcode)) {
      throw protocolError(`Received a frame with unknown opcode "${opcode}"`);
    }
    const masked = (bytes[at + 1] & 0x80) !== 0;
    if (masked !== this.#masked) {
      throw protocolError(
        masked
          ? "Received a masked frame from the server"
          : "Received an unmasked frame from the client",
      );
    }
    const length7 = bytes[at + 1] & 0x7f;
    if (opcode >= OPCODE.close && (!fin || length7 > MAX_CONTROL_PAYLOAD)) {
      throw protocolError(
        `Received a fragmented or oversized control frame (opcode "${opcode}")`,
      );
    }
    const lengthBytes = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
    const headerLength = 2 + lengthBytes + (masked ? 4 : 0);
    if (available < headerLength) return undefined;
    const view = new DataView(bytes.buffer, at);
    let length = length7;
    if (lengthBytes === 2) length = view.getUint16(2);
    if (lengthBytes === 8) {
      const big = view.getBigUint64(2);
      if (big >> 63n) {
        throw protocolError("Received a frame length with the top bit set");
      }
      length = big > BigInt(Number.MAX_SAFE_INTEGER)
        ? Number.MAX_SAFE_INTEGER
        : Number(big);
    }
    if (length > this.#maxPayloadBytes) {
      throw tooBig(length, this.#maxPayloadBytes);
    }
    if (available < headerLength + length) return undefined;
    const payloadAt = at + headerLength;
    const payload = bytes.slice(payloadAt, payloadAt + length);
    if (masked) {
      const mask = bytes.subarray(payloadAt - 4, payloadAt);
      for (let i = 0; i < length; i++) payload[i] ^= mask[i & 3];
    }
    this.#start += headerLength + length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return { fin, opcode, payload };
  }
}

/** Options of a {@linkcode MessageAssembler}. */
export interface MessageAssemblerOptions {
  /** Largest message accepted, default {@linkcode DEFAULT_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
}

/**
 * Joins fragmented data frames into messages, validates text as UTF-8 and
 * close payloads, and passes control frames through (they may arrive
 * between the fragments of a message).
 *
 * {@linkcode MessageAssembler.push} throws a `protocol`
 * {@linkcode WebSocketError} carrying the close code to send.
 */
export class MessageAssembler {
  #maxMessageBytes: number;
  #fragments: Uint8Array[] = [];
  #fragmentBytes = 0;
  #fragmentOpcode: number | undefined;

  /** Creates an assembler with no message in progress. */
  constructor(options: MessageAssemblerOptions = {}) {
    this.#maxMessageBytes = options.maxMessageBytes ??
      DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** Takes the next frame; returns a message once one is complete. */
  push(frame: Frame): Message | undefined {
    const { opcode, payload } = frame;
    switch (opcode) {
      case OPCODE.ping:
        return { type: "ping", data: payload };
      case OPCODE.pong:
        return { type: "pong", data: payload };
      case OPCODE.close:
        return { type: "close", ...decodeClosePayload(payload) };
    }
    if (opcode === OPCODE.continuation) {
      if (this.#fragmentOpcode === undefined) {
        throw protocolError("Received a continuation frame with no message");
      }
    } else if (this.#fragmentOpcode !== undefined) {
      throw protocolError("Received a new message inside a fragmented one");
    }
    const messageBytes = this.#fragmentBytes + payload.length;
    if (messageBytes > this.#maxMessageBytes) {
      throw tooBig(messageBytes, this.#maxMessageBytes);
    }
    if (!frame.fin) {
      this.#fragmentOpcode ??= opcode;
      this.#fragments.push(payload);
      this.#fragmentBytes = messageBytes;
      return undefined;
    }
    let data = payload;
    let messageOpcode = opcode;
    if (this.#fragmentOpcode !== undefined) {
      messageOpcode = this.#fragmentOpcode;
      data = concat([...this.#fragments, payload]);
      this.#fragments = [];
      this.#fragmentBytes = 0;
      this.#fragmentOpcode = undefined;
    }
    if (messageOpcode === OPCODE.binary) return { type: "binary", data };
    return { type: "text", data: decodeUtf8(data, "a text message") };
  }
}

/**
 * The payload of a close frame: empty without a code, else the code
 * (big-endian) and the reason as UTF-8.
 *
 * @throws {RangeError} when the reason is longer than 123 bytes.
 */
export function encodeClosePayload(
  code?: number,
  reason = "",
): Uint8Array<ArrayBuffer> {
  if (code === undefined) return new Uint8Array(0);
  const reasonBytes = new TextEncoder().encode(reason);
  if (reasonBytes.length > MAX_CONTROL_PAYLOAD - 2) {
    throw new RangeError(
      `Invalid close reason "${reason}": longer than 123 bytes of UTF-8`,
    );
  }
  const payload = new Uint8Array(2 + reasonBytes.length);
  new DataView(payload.buffer).setUint16(0, code);
  payload.set(reasonBytes, 2);
  return payload;
}

/**
 * The code and reason of a received close frame; code 1005 when it has
 * none.
 *
 * @throws {WebSocketError} (`protocol`) for a one-byte payload, a code a
 * peer may not send, or a reason that is not UTF-8.
 */
export function decodeClosePayload(
  payload: Uint8Array,
): { code: number; reason: string } {
  if (payload.length === 0) return { code: CLOSE_CODE.noStatus, reason: "" };
  if (payload.length === 1) {
    throw protocolError("Received a close frame with a one-byte payload");
  }
  const code = (payload[0] << 8) | payload[1];
  if (!isSendableCloseCode(code)) {
    throw protocolError(`Received a close frame with invalid code "${code}"`);
  }
  return { code, reason: decodeUtf8(payload.subarray(2), "a close reason") };
}

/**
 * Whether a peer may put `code` in a close frame: 1000–1003, 1007–1014
 * and 3000–4999 (1004–1006 and 1015 are reserved for local use).
 */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new WebSocketError(
      "protocol",
      `Received ${what} that is not valid UTF-8`,
      { closeCode: CLOSE_CODE.invalidData, cause },
    );
  }
}

function protocolError(message: string): WebSocketError {
  return new WebSocketError("protocol", message, {
    closeCode: CLOSE_CODE.protocolError,
  });
}

function tooBig(bytes: number, max: number): WebSocketError {
  return new WebSocketError(
    "protocol",
    `Received a message of "${bytes}" bytes: expected at most ${max}`,
    { closeCode: CLOSE_CODE.tooBig },
  );
}
