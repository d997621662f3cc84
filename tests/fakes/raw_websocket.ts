/**
 * A WebSocket client written over a bare TCP connection, for faults a real
 * client cannot produce: a peer that never reads, or that vanishes without a
 * close frame.
 *
 * @module
 */

import { concat } from "@std/bytes";

const encoder = new TextEncoder();

/** A client end that only writes: it never reads what the server sends. */
export class RawWebSocket {
  #conn: Deno.TcpConn;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to `port` on 127.0.0.1 and sends the upgrade request for `path`, reading only the answer's status line. */
  static async open(port: number, path: string): Promise<RawWebSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await writeAll(
      conn,
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      ),
    );
    const buffer = new Uint8Array(1024);
    const read = await conn.read(buffer);
    const head = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
    if (!head.startsWith("HTTP/1.1 101")) {
      conn.close();
      throw new Error(`Upgrade refused: "${head.split("\r\n")[0]}"`);
    }
    return new RawWebSocket(conn);
  }

  /** Sends one masked text frame, as a client must. */
  sendText(text: string): Promise<void> {
    return this.sendTextBytes(encoder.encode(text));
  }

  /** Sends `payload` as one masked text frame, UTF-8 or not. */
  async sendTextBytes(payload: Uint8Array): Promise<void> {
    const length = payload.length;
    const header = length < 126
      ? [0x81, 0x80 | length]
      : length < 65536
      ? [0x81, 0x80 | 126, length >> 8, length & 255]
      : [
        0x81,
        0x80 | 127,
        0,
        0,
        0,
        0,
        (length >>> 24) & 255,
        (length >> 16) & 255,
        (length >> 8) & 255,
        length & 255,
      ];
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const frame = new Uint8Array(header.length + 4 + length);
    frame.set(header);
    frame.set(mask, header.length);
    for (let i = 0; i < length; i++) {
      frame[header.length + 4 + i] = payload[i] ^ mask[i & 3];
    }
    await writeAll(this.#conn, frame);
  }

  /**
   * Reads, never answering, until the server ends the TCP connection; resolves
   * with the code of the close frame it sent first, if any.
   */
  async waitForEnd(): Promise<{ closeCode?: number }> {
    const buffer = new Uint8Array(64 * 1024);
    let pending: Uint8Array = new Uint8Array(0);
    let closeCode: number | undefined;
    while (true) {
      let read: number | null;
      try {
        read = await this.#conn.read(buffer);
      } catch {
        read = null;
      }
      if (read === null) break;
      pending = concat([pending, buffer.subarray(0, read)]);
      // Server frames are unmasked; only lengths below 64 KiB occur here.
      while (pending.length >= 2) {
        const short = pending[1] & 127;
        const headerLength = short === 126 ? 4 : 2;
        const length = short === 126 ? (pending[2] << 8) | pending[3] : short;
        if (pending.length < headerLength + length) break;
        if ((pending[0] & 15) === 8 && length >= 2) {
          closeCode ??= (pending[headerLength] << 8) |
            pending[headerLength + 1];
        }
        pending = pending.slice(headerLength + length);
      }
    }
    this.#conn.close();
    return { closeCode };
  }

  /** Drops the TCP connection with no closing handshake. */
  drop(): void {
    this.#conn.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    offset += await conn.write(bytes.subarray(offset));
  }
}
