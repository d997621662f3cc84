/**
 * The STT WebSocket session over `npm:ws`: refused handshakes, vendors that
 * misbehave on the wire (raw TCP peers), and closes that are never answered.
 * The vendor adapters' own behaviour is in stt_test.ts.
 */
import {
  assert,
  assertEquals,
  assertExists,
  assertInstanceOf,
  assertStringIncludes,
} from "@std/assert";
import { concat } from "@std/bytes";
import { ProviderError } from "../src/providers/provider_error.ts";
import { DeepgramStt } from "../src/providers/stt/deepgram.ts";
import { WsSession } from "../src/providers/ws_session.ts";
import { FakeSttServer } from "./fakes/stt_servers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One frame a client sent: its opcode and unmasked payload. */
interface ClientFrame {
  opcode: number;
  payload: Uint8Array;
}

const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;

/** An unmasked server frame with FIN set (payloads under 64 KiB). */
function serverFrame(opcode: number, payload: Uint8Array | string): Uint8Array {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  const head = bytes.length < 126
    ? new Uint8Array([0x80 | opcode, bytes.length])
    : new Uint8Array([
      0x80 | opcode,
      126,
      bytes.length >> 8,
      bytes.length & 0xff,
    ]);
  return concat([head, bytes]);
}

/** A TCP peer that speaks just enough RFC 6455 to misbehave on purpose. */
class RawPeer {
  readonly conn: Deno.TcpConn;
  #buffer: Uint8Array = new Uint8Array(0);

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Reads more bytes; false once the client has closed the connection. */
  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.conn.read(chunk).catch(() => null);
    if (n === null) return false;
    this.#buffer = concat([this.#buffer, chunk.subarray(0, n)]);
    return true;
  }

  /** Reads the upgrade request and answers it with 101, then `after`. */
  async upgrade(after: Uint8Array = new Uint8Array(0)): Promise<void> {
    let end = -1;
    while ((end = decoder.decode(this.#buffer).indexOf("\r\n\r\n")) < 0) {
      if (!await this.#fill()) throw new Error("Client left the handshake");
    }
    const head = decoder.decode(this.#buffer.subarray(0, end));
    this.#buffer = this.#buffer.subarray(end + 4);
    const key = /sec-websocket-key: (.*)/i.exec(head)?.[1].trim() ?? "";
    const digest = await crypto.subtle.digest(
      "SHA-1",
      encoder.encode(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`),
    );
    const accept = new Uint8Array(digest).toBase64();
    await this.write(concat([
      encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
          `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ),
      after,
    ]));
  }

  async write(bytes: Uint8Array): Promise<void> {
    let rest = bytes;
    while (rest.length > 0) rest = rest.subarray(await this.conn.write(rest));
  }

  /** The client's frames until it closes the connection. */
  async readToEnd(): Promise<ClientFrame[]> {
    const frames: ClientFrame[] = [];
    for (;;) {
      const frame = this.#takeFrame();
      if (frame) {
        frames.push(frame);
        continue;
      }
      if (!await this.#fill()) return frames;
    }
  }

  #takeFrame(): ClientFrame | undefined {
    const b = this.#buffer;
    if (b.length < 2) return undefined;
    let length = b[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = (b[2] << 8) | b[3];
      offset = 4;
    }
    if (b.length < offset + 4 + length) return undefined;
    const mask = b.subarray(offset, offset + 4);
    const payload = b.slice(offset + 4, offset + 4 + length)
      .map((byte, i) => byte ^ mask[i % 4]);
    this.#buffer = b.subarray(offset + 4 + length);
    return { opcode: b[0] & 0x0f, payload };
  }
}

/** A TCP server on 127.0.0.1 running `script` for its first connection. */
class RawServer implements AsyncDisposable {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #done: Promise<void>;

  constructor(script: (peer: RawPeer) => Promise<void>) {
    this.#done = this.#listener.accept().then(async (conn) => {
      try {
        await script(new RawPeer(conn));
      } finally {
        try {
          conn.close();
        } catch {
          // The script closed it already.
        }
      }
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.#listener.addr.port}/raw`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.#done;
    } finally {
      this.#listener.close();
    }
  }
}

/** The error a session's events end with, or `undefined` for a clean end. */
async function sessionEnd(
  events: AsyncIterable<unknown>,
): Promise<ProviderError | undefined> {
  try {
    for await (const _ of events) {
      // Only the end matters here.
    }
  } catch (error) {
    assertInstanceOf(error, ProviderError);
    return error;
  }
  return undefined;
}

function session(url: string, options: { headers?: HeadersInit } = {}) {
  return new WsSession<unknown>({
    provider: "example",
    vendor: "Example",
    url: new URL(url),
    headers: options.headers,
    connectTimeoutMs: 2000,
    closeTimeoutMs: 50,
    maxPendingBytes: 1000,
    onMessage: () => {},
    farewell: () => [],
    settled: () => Promise.resolve(),
  });
}

Deno.test("ws session: a refused Deepgram handshake quotes the vendor's error code, not the key", async () => {
  await using server = await FakeSttServer.start("deepgram");
  server.script({ kind: "unauthorized" });
  const stt = new DeepgramStt({
    apiKey: server.apiKey,
    baseUrl: server.baseUrl,
    connectTimeoutMs: 2000,
  });
  const opened = await stt.open({ sampleRate: 8000, language: "en-IN" });
  const error = await sessionEnd(opened.events());
  await opened.close();

  assertExists(error);
  assertEquals([error.kind, error.status], ["http", 401]);
  assertEquals(
    error.message,
    'Deepgram refused the connection with HTTP 401 "INVALID_AUTH: Invalid credentials.": check the API key',
  );
});

for (
  const { name, body } of [
    { name: "in one piece", body: (text: string) => text },
    {
      name: "in chunks",
      body: (text: string) =>
        ReadableStream.from([text.slice(0, 4), text.slice(4)])
          .pipeThrough(new TextEncoderStream()),
    },
  ]
) {
  Deno.test(`ws session: a refusal body sent ${name} is quoted with the echoed key masked`, async () => {
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) =>
        new Response(body(`bad key ${request.headers.get("authorization")}`), {
          status: 403,
        }),
    );
    const stream = session(`ws://127.0.0.1:${server.addr.port}/`, {
      headers: { Authorization: "Bearer sk-live-0123456789" },
    });
    const error = await sessionEnd(stream.events());
    await stream.close();

    assertExists(error);
    assertEquals([error.kind, error.status], ["http", 403]);
    assert(!error.message.includes("0123456789"), error.message);
    assertStringIncludes(error.message, '"bad key ***"');
  });
}

Deno.test("ws session: a closed port is a network error naming the vendor and the URL", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const stream = session(`ws://127.0.0.1:${port}/listen?key=x`);
  const error = await sessionEnd(stream.events());
  await stream.close();

  assertExists(error);
  assertEquals(error.kind, "network");
  assertStringIncludes(
    error.message,
    `Could not connect to Example at "ws://127.0.0.1:${port}/listen"`,
  );
});

Deno.test("ws session: a vendor that never answers the close frame is cut off and ends without error", async () => {
  const seen = Promise.withResolvers<ClientFrame[]>();
  await using server = new RawServer(async (peer) => {
    await peer.upgrade();
    seen.resolve(await peer.readToEnd());
  });
  const stream = session(server.url);
  const ended = sessionEnd(stream.events());
  stream.send(new Uint8Array(320));
  await stream.close();

  assertEquals(await ended, undefined);
  const frames = await seen.promise;
  assertEquals(frames.map((f) => f.opcode), [BINARY, CLOSE]);
  assertEquals((frames[1].payload[0] << 8) | frames[1].payload[1], 1000);
});

Deno.test("ws session: a vendor sending invalid UTF-8 fails the session as a protocol error", async () => {
  await using server = new RawServer(async (peer) => {
    await peer.upgrade(serverFrame(TEXT, new Uint8Array([0x7b, 0xff])));
    await peer.readToEnd();
  });
  const stream = session(server.url);
  const error = await sessionEnd(stream.events());
  await stream.close();

  assertExists(error);
  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, "Example broke the WebSocket protocol");
  assertStringIncludes(error.message, "UTF-8");
});

Deno.test("ws session: a vendor dropping the connection mid-message is a network error", async () => {
  await using server = new RawServer(async (peer) => {
    await peer.upgrade();
    await peer.write(
      serverFrame(BINARY, new Uint8Array(1000)).subarray(0, 300),
    );
    peer.conn.close();
  });
  const stream = session(server.url);
  const error = await sessionEnd(stream.events());
  await stream.close();

  assertExists(error);
  assertEquals(error.kind, "network");
  assertStringIncludes(error.message, "without a close frame");
});
