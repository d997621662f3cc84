/**
 * The NODELAY WebSocket client: its frame codec and handshake helpers on
 * their own, then the client against Deno's WebSocket server and against
 * raw TCP peers that misbehave on purpose.
 */
import {
  assert,
  assertEquals,
  assertExists,
  assertInstanceOf,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  WebSocketClient,
  WebSocketError,
} from "../src/net/websocket_client.ts";
import { ProviderError } from "../src/providers/provider_error.ts";
import { DeepgramStt } from "../src/providers/stt/deepgram.ts";
import { WsSession } from "../src/providers/stt/ws_session.ts";
import { FakeSttServer } from "./fakes/stt_servers.ts";
import {
  decodeClosePayload,
  encodeClosePayload,
  encodeFrame,
  type Frame,
  FrameParser,
  MessageAssembler,
  OPCODE,
} from "../src/net/websocket_frame.ts";
import {
  acceptFor,
  checkUpgrade,
  handshakeRequest,
  headEnd,
  parseResponseHead,
  responseBody,
  subprotocolList,
} from "../src/net/websocket_handshake.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function frame(
  opcode: number,
  payload: Uint8Array | string,
  fin = true,
): Frame {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  return { fin, opcode, payload: new Uint8Array(bytes) };
}

/** The protocol error `fn` throws, with its close code. */
function protocolFailure(fn: () => unknown): WebSocketError {
  const error = assertThrows(fn, WebSocketError);
  assertEquals(error.code, "protocol");
  return error;
}

// ---------------------------------------------------------------- codec

Deno.test("frames use 7-, 16- and 64-bit lengths at the RFC boundaries and parse back", () => {
  const mask = new Uint8Array([1, 2, 3, 4]);
  for (
    const [length, headerLength] of [
      [0, 6],
      [125, 6],
      [126, 8],
      [65535, 8],
      [65536, 14],
      [200_000, 14],
    ]
  ) {
    const payload = new Uint8Array(length).map((_, i) => i & 255);
    const bytes = encodeFrame({ opcode: OPCODE.binary, payload }, mask);
    assertEquals(bytes.length, headerLength + length, `length ${length}`);
    const parser = new FrameParser({ masked: true });
    parser.push(bytes);
    assertEquals(parser.next(), { fin: true, opcode: OPCODE.binary, payload });
    assertEquals(parser.next(), undefined);
  }
});

Deno.test("a masked frame's payload is XORed with the mask, the mask on the wire", () => {
  const mask = new Uint8Array([0xff, 0x00, 0x0f, 0xf0]);
  const bytes = encodeFrame(frame(OPCODE.text, "abcde"), mask);
  assertEquals([...bytes.subarray(0, 6)], [0x81, 0x85, 0xff, 0x00, 0x0f, 0xf0]);
  assertEquals(
    [...bytes.subarray(6)],
    [0x61 ^ 0xff, 0x62, 0x63 ^ 0x0f, 0x64 ^ 0xf0, 0x65 ^ 0xff],
  );
  assertEquals(
    [...encodeFrame(frame(OPCODE.text, "abcde"))],
    [0x81, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65],
  );
});

Deno.test("the frame parser reassembles frames fed one byte at a time", () => {
  const frames = [
    frame(OPCODE.text, "hello"),
    frame(OPCODE.binary, new Uint8Array(70_000).fill(9)),
    frame(OPCODE.ping, "p"),
    frame(OPCODE.binary, new Uint8Array(300).fill(1), false),
  ];
  const stream = frames.flatMap((f) => [...encodeFrame(f)]);
  const parser = new FrameParser();
  const parsed: Frame[] = [];
  for (const byte of stream) {
    parser.push(new Uint8Array([byte]));
    for (let f = parser.next(); f; f = parser.next()) parsed.push(f);
  }
  assertEquals(parsed, frames);
  assertEquals(parser.bufferedBytes, 0);
});

Deno.test("the frame parser rejects frames that break RFC 6455 with close code 1002", () => {
  const cases: [string, number[]][] = [
    ["reserved bits", [0xc1, 0x00]],
    ["unknown opcode", [0x83, 0x00]],
    ["masked frame from a server", [0x81, 0x80, 0, 0, 0, 0]],
    ["fragmented control frame", [0x09, 0x00]],
    ["control frame over 125 bytes", [0x89, 126, 0, 126]],
    ["64-bit length with the top bit set", [
      0x82,
      127,
      0x80,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    ]],
  ];
  for (const [name, bytes] of cases) {
    const parser = new FrameParser();
    parser.push(new Uint8Array(bytes));
    assertEquals(protocolFailure(() => parser.next()).closeCode, 1002, name);
  }
  const server = new FrameParser({ masked: true });
  server.push(new Uint8Array([0x81, 0x00]));
  assertEquals(protocolFailure(() => server.next()).closeCode, 1002);
});

Deno.test("the frame parser refuses a frame over the cap with 1009 before its payload arrives", () => {
  const parser = new FrameParser({ maxPayloadBytes: 1000 });
  parser.push(new Uint8Array([0x82, 126, 0x03, 0xe9])); // 1001 bytes
  const error = protocolFailure(() => parser.next());
  assertEquals(error.closeCode, 1009);
  assertStringIncludes(error.message, '"1001"');
  const huge = new FrameParser();
  huge.push(new Uint8Array([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]));
  assertEquals(protocolFailure(() => huge.next()).closeCode, 1009);
});

Deno.test("the assembler joins fragments, passing control frames between them through", () => {
  const assembler = new MessageAssembler();
  const text = "héllo wörld";
  const bytes = encoder.encode(text);
  // Cut inside the two-byte "é": UTF-8 is validated on the whole message.
  assertEquals(
    assembler.push(frame(OPCODE.text, bytes.subarray(0, 2), false)),
    undefined,
  );
  assertEquals(assembler.push(frame(OPCODE.ping, "p")), {
    type: "ping",
    data: encoder.encode("p"),
  });
  assertEquals(
    assembler.push(frame(OPCODE.continuation, bytes.subarray(2, 7), false)),
    undefined,
  );
  assertEquals(
    assembler.push(frame(OPCODE.continuation, bytes.subarray(7))),
    { type: "text", data: text },
  );
  const binary = assembler.push(frame(OPCODE.binary, new Uint8Array([1, 2])));
  assertEquals(binary, { type: "binary", data: new Uint8Array([1, 2]) });
});

Deno.test("the assembler rejects bad fragment order, oversized messages and invalid UTF-8", () => {
  const orphan = new MessageAssembler();
  assertEquals(
    protocolFailure(() => orphan.push(frame(OPCODE.continuation, "x")))
      .closeCode,
    1002,
  );
  const interleaved = new MessageAssembler();
  interleaved.push(frame(OPCODE.text, "a", false));
  assertEquals(
    protocolFailure(() => interleaved.push(frame(OPCODE.binary, "b")))
      .closeCode,
    1002,
  );
  const capped = new MessageAssembler({ maxMessageBytes: 10 });
  capped.push(frame(OPCODE.binary, new Uint8Array(6), false));
  assertEquals(
    protocolFailure(() =>
      capped.push(frame(OPCODE.continuation, new Uint8Array(6)))
    ).closeCode,
    1009,
  );
  const text = new MessageAssembler();
  assertEquals(
    protocolFailure(() =>
      text.push(frame(OPCODE.text, new Uint8Array([0x61, 0xc3])))
    ).closeCode,
    1007,
  );
});

Deno.test("close payloads carry a code and a UTF-8 reason, or nothing (1005)", () => {
  assertEquals(decodeClosePayload(encodeClosePayload(4000, "done ✓")), {
    code: 4000,
    reason: "done ✓",
  });
  assertEquals(decodeClosePayload(new Uint8Array(0)), {
    code: 1005,
    reason: "",
  });
  assertEquals(encodeClosePayload(), new Uint8Array(0));
  assertThrows(() => encodeClosePayload(1000, "x".repeat(124)), RangeError);
  for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000]) {
    const payload = new Uint8Array([code >> 8, code & 255]);
    assertEquals(
      protocolFailure(() => decodeClosePayload(payload)).closeCode,
      1002,
      `code ${code}`,
    );
  }
  assertEquals(
    protocolFailure(() => decodeClosePayload(new Uint8Array([3]))).closeCode,
    1002,
  );
  assertEquals(
    protocolFailure(() =>
      decodeClosePayload(new Uint8Array([0x03, 0xe8, 0xff]))
    ).closeCode,
    1007,
  );
});

// ------------------------------------------------------------ handshake

Deno.test("the accept key matches RFC 6455's worked example", async () => {
  assertEquals(
    await acceptFor("dGhlIHNhbXBsZSBub25jZQ=="),
    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
  );
});

Deno.test("the upgrade request carries the key, version, subprotocols and caller headers", () => {
  const request = decoder.decode(
    handshakeRequest(new URL("ws://example.com:8080/v1/listen?x=1"), {
      key: "k",
      protocols: ["token", "v2"],
      headers: { Authorization: "Token t", Upgrade: "h2c", Host: "evil" },
    }),
  );
  assertEquals(
    request,
    [
      "GET /v1/listen?x=1 HTTP/1.1",
      "Host: example.com:8080",
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: k",
      "Sec-WebSocket-Version: 13",
      "Sec-WebSocket-Protocol: token, v2",
      "authorization: Token t",
      "",
      "",
    ].join("\r\n"),
  );
  assertThrows(
    () =>
      handshakeRequest(new URL("ws://a/"), {
        key: "k",
        headers: { "x-bad": "a\r\nb: c" },
      }),
    TypeError,
  );
});

Deno.test("subprotocols must be distinct HTTP tokens", () => {
  assertEquals(subprotocolList("a"), ["a"]);
  assertEquals(subprotocolList(undefined), []);
  assertThrows(() => subprotocolList(["a b"]), SyntaxError, '"a b"');
  assertThrows(() => subprotocolList(["a", "A"]), SyntaxError, "duplicated");
});

Deno.test("checkUpgrade names what is wrong with a 101 answer", () => {
  const head = (lines: string[]) =>
    parseResponseHead(
      ["HTTP/1.1 101 Switching Protocols", ...lines].join("\r\n"),
    );
  const good = [
    "Upgrade: websocket",
    "Connection: keep-alive, Upgrade",
    "Sec-WebSocket-Accept: A",
  ];
  assertEquals(checkUpgrade(head(good), { accept: "A", protocols: [] }), "");
  assertEquals(
    checkUpgrade(head([...good, "Sec-WebSocket-Protocol: b"]), {
      accept: "A",
      protocols: ["a", "b"],
    }),
    "b",
  );
  const wrong: [string[], string[], string][] = [
    [good.slice(1), [], "Upgrade"],
    [[good[0], good[2]], [], "Connection"],
    [good.slice(0, 2), [], "Sec-WebSocket-Accept"],
    [
      [...good, "Sec-WebSocket-Extensions: permessage-deflate"],
      [],
      "Extensions",
    ],
    [[...good, "Sec-WebSocket-Protocol: c"], ["a"], '"c"'],
    [good, ["a"], "Missing Sec-WebSocket-Protocol"],
  ];
  for (const [lines, protocols, expected] of wrong) {
    const error = assertThrows(
      () => checkUpgrade(head(lines), { accept: "A", protocols }),
      WebSocketError,
    );
    assertEquals(error.code, "handshake");
    assertStringIncludes(error.message, expected);
  }
  assertThrows(() => parseResponseHead("SSH-2.0-OpenSSH"), WebSocketError);
  assertEquals(headEnd(encoder.encode("HTTP/1.1 101\r\n\r\nxx")), 16);
  assertEquals(headEnd(encoder.encode("HTTP/1.1 101\r\n")), -1);
});

Deno.test("a refused handshake's body is read as is or undone from chunks", () => {
  assertEquals(responseBody(encoder.encode('{"a":1}'), false), '{"a":1}');
  assertEquals(
    responseBody(encoder.encode('3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n'), true),
    '{"a":1}',
  );
  // Cut by the size cap in the middle of a chunk.
  assertEquals(responseBody(encoder.encode("a\r\nhello"), true), "hello");
});

// ------------------------------------------------ client, helpers for I/O

interface Observed {
  messages: (string | ArrayBuffer)[];
  errors: ErrorEvent[];
  opened: Promise<void>;
  closed: Promise<CloseEvent>;
  /** Resolves once `count` messages arrived. */
  received(count: number): Promise<void>;
}

function observe(ws: WebSocketClient): Observed {
  const messages: (string | ArrayBuffer)[] = [];
  const errors: ErrorEvent[] = [];
  const opened = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<CloseEvent>();
  const waiters: (() => void)[] = [];
  ws.onopen = () => opened.resolve();
  ws.onmessage = (event) => {
    messages.push(event.data);
    for (const wake of waiters.splice(0)) wake();
  };
  ws.onerror = (event) => errors.push(event);
  ws.onclose = (event) => {
    assertEquals(ws.readyState, WebSocketClient.CLOSED);
    closed.resolve(event);
  };
  return {
    messages,
    errors,
    opened: opened.promise,
    closed: closed.promise,
    async received(count) {
      while (messages.length < count) {
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

/** The single error a failed connection reported. */
function failureOf(observed: Observed): WebSocketError {
  assertEquals(observed.errors.length, 1);
  const error = observed.errors[0].error;
  assertInstanceOf(error, WebSocketError);
  assertEquals(observed.errors[0].message, error.message);
  return error;
}

/** What a server saw of a handshake. */
interface Handshake {
  url: string;
  headers: Headers;
}

/** A Deno WebSocket server on 127.0.0.1 that hands each socket to `onSocket`. */
function wsServer(
  onSocket: (socket: WebSocket, request: Handshake) => void,
  options: { protocol?: string; cert?: string; key?: string } = {},
): Deno.HttpServer<Deno.NetAddr> {
  const { protocol, cert, key } = options;
  return Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      ...(cert ? { cert, key } : {}),
    },
    (request) => {
      // The request's headers are gone once it is upgraded.
      const seen = { url: request.url, headers: new Headers(request.headers) };
      const { socket, response } = Deno.upgradeWebSocket(
        request,
        protocol ? { protocol } : {},
      );
      onSocket(socket, seen);
      return response;
    },
  );
}

function echo(socket: WebSocket): void {
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => socket.send(event.data);
}

/** The server side of one raw TCP connection. */
class RawPeer {
  readonly conn: Deno.TcpConn;
  head = "";
  #parser = new FrameParser({ masked: true });
  #chunk = new Uint8Array(65536);
  #pending: Uint8Array = new Uint8Array(0);

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Reads the upgrade request's head. */
  async readHead(): Promise<string> {
    let received: Uint8Array = new Uint8Array(0);
    while (headEnd(received) < 0) {
      const n = await this.conn.read(this.#chunk);
      if (n === null) throw new Error("Client left during the handshake");
      received = concat(received, this.#chunk.subarray(0, n));
    }
    const end = headEnd(received);
    this.head = decoder.decode(received.subarray(0, end));
    this.#pending = received.subarray(end);
    return this.head;
  }

  /** The `Sec-WebSocket-Accept` the request's key calls for. */
  accept(): Promise<string> {
    const key = /sec-websocket-key: (.*)\r\n/i.exec(this.head)?.[1] ?? "";
    return acceptFor(key);
  }

  /** Answers the upgrade correctly, followed by `after` in the same write. */
  async upgrade(after: Uint8Array = new Uint8Array(0)): Promise<void> {
    const answer =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Accept: ${await this
        .accept()}\r\n\r\n`;
    await this.write(concat(encoder.encode(answer), after));
  }

  async write(bytes: Uint8Array | string): Promise<void> {
    let rest = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
    while (rest.length > 0) rest = rest.subarray(await this.conn.write(rest));
  }

  /** Reads raw bytes, exactly `count`. */
  async readBytes(count: number): Promise<Uint8Array> {
    while (this.#pending.length < count) {
      const n = await this.conn.read(this.#chunk);
      if (n === null) throw new Error("Client left");
      this.#pending = concat(this.#pending, this.#chunk.subarray(0, n));
    }
    const bytes = this.#pending.subarray(0, count);
    this.#pending = this.#pending.subarray(count);
    return bytes;
  }

  /** The next frame the client sent, or `null` once it closed the connection. */
  async readFrame(): Promise<Frame | null> {
    this.#parser.push(this.#pending);
    this.#pending = new Uint8Array(0);
    for (;;) {
      const next = this.#parser.next();
      if (next) return next;
      const n = await this.conn.read(this.#chunk);
      if (n === null) return null;
      this.#parser.push(this.#chunk.subarray(0, n));
    }
  }

  /** Reads until the client closes the connection; returns the frames seen. */
  async readToEnd(): Promise<Frame[]> {
    const frames: Frame[] = [];
    for (let f = await this.readFrame(); f; f = await this.readFrame()) {
      frames.push(f);
    }
    return frames;
  }
}

/** A TCP server on 127.0.0.1 that runs `script` for its first connection. */
class RawServer implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly done: Promise<void>;

  constructor(script: (peer: RawPeer) => Promise<void>) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.listener = listener;
    this.done = (async () => {
      const conn = await listener.accept();
      try {
        await script(new RawPeer(conn));
      } finally {
        try {
          conn.close();
        } catch {
          // The script closed it already.
        }
      }
    })();
  }

  get url(): string {
    return `ws://127.0.0.1:${this.listener.addr.port}/raw`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.done;
    } finally {
      this.listener.close();
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

function serverFrame(f: Frame): Uint8Array {
  return encodeFrame(f);
}

function closeOf(
  f: Frame | null | undefined,
): { code: number; reason: string } {
  assertExists(f);
  assertEquals(f.opcode, OPCODE.close);
  return decodeClosePayload(f.payload);
}

// ------------------------------------------------ client against Deno.serve

Deno.test("client echoes text and binary messages of every length class through Deno's server", async () => {
  await using server = wsServer(echo);
  const ws = new WebSocketClient(`ws://127.0.0.1:${server.addr.port}/echo`);
  ws.binaryType = "arraybuffer";
  const observed = observe(ws);
  assertEquals(ws.readyState, WebSocketClient.CONNECTING);
  await observed.opened;
  assertEquals(ws.readyState, WebSocketClient.OPEN);
  const sizes = [0, 1, 125, 126, 65535, 65536, 1024 * 1024];
  const sent = sizes.map((size) =>
    new Uint8Array(size).map((_, i) => (i * 7 + size) & 255)
  );
  ws.send("héllo");
  for (const bytes of sent) ws.send(bytes);
  ws.send(sent[2].buffer);
  await observed.received(sizes.length + 2);
  ws.close();
  const closed = await observed.closed;

  assertEquals(observed.messages[0], "héllo");
  for (const [i, bytes] of sent.entries()) {
    const data = observed.messages[i + 1];
    assertInstanceOf(data, ArrayBuffer);
    assertEquals(new Uint8Array(data), bytes, `size ${sizes[i]}`);
  }
  assertEquals(
    new Uint8Array(observed.messages.at(-1) as ArrayBuffer),
    sent[2],
  );
  assertEquals([closed.code, closed.wasClean], [1005, true]);
  assertEquals(observed.errors, []);
});

Deno.test("client keeps many quick sends in order with bufferedAmount back at zero", async () => {
  const received: number[] = [];
  const all = Promise.withResolvers<void>();
  await using server = wsServer((socket) => {
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      const bytes = new Uint8Array(event.data as ArrayBuffer);
      received.push(bytes[0] | (bytes[1] << 8));
      if (received.length === 500) all.resolve();
    };
  });
  const ws = new WebSocketClient(`ws://127.0.0.1:${server.addr.port}/`);
  const observed = observe(ws);
  await observed.opened;
  let queued = 0;
  for (let i = 0; i < 500; i++) {
    const size = 2 + (i * 977) % 9000;
    const bytes = new Uint8Array(size);
    bytes[0] = i & 255;
    bytes[1] = i >> 8;
    ws.send(bytes);
    queued += size;
  }
  assertEquals(ws.bufferedAmount, queued);
  await all.promise;
  assertEquals(received, [...Array(500).keys()]);
  assertEquals(ws.bufferedAmount, 0);
  ws.close(1000);
  await observed.closed;
});

Deno.test("client sends caller headers and a subprotocol, and reports the one chosen", async () => {
  const seen = Promise.withResolvers<Handshake>();
  await using server = wsServer((socket, request) => {
    seen.resolve(request);
    echo(socket);
  }, { protocol: "token" });
  const ws = new WebSocketClient(`ws://127.0.0.1:${server.addr.port}/v1?q=1`, {
    headers: { Authorization: "Token secret" },
    protocols: ["token", "other"],
  });
  const observed = observe(ws);
  await observed.opened;
  const request = await seen.promise;
  ws.close(4000, "bye");
  await observed.closed;

  assertEquals(ws.protocol, "token");
  assertEquals(new URL(request.url).search, "?q=1");
  assertEquals(request.headers.get("authorization"), "Token secret");
  assertEquals(request.headers.get("sec-websocket-protocol"), "token, other");
});

Deno.test("client reports the server's close code and reason, and echoes the close", async () => {
  const serverClosed = Promise.withResolvers<CloseEvent>();
  await using server = wsServer((socket) => {
    socket.onopen = () => socket.close(4001, "NET-0000");
    socket.onclose = (event) => serverClosed.resolve(event);
  });
  const observed = observe(
    new WebSocketClient(`ws://127.0.0.1:${server.addr.port}/`),
  );
  const closed = await observed.closed;

  assertEquals([closed.code, closed.reason, closed.wasClean], [
    4001,
    "NET-0000",
    true,
  ]);
  assertEquals(observed.errors, []);
  assert((await serverClosed.promise).wasClean);
});

Deno.test("client close sends its code and reason and ends once the server answers", async () => {
  const serverClosed = Promise.withResolvers<CloseEvent>();
  await using server = wsServer((socket) => {
    socket.onclose = (event) => serverClosed.resolve(event);
  });
  const ws = new WebSocketClient(`ws://127.0.0.1:${server.addr.port}/`);
  const observed = observe(ws);
  await observed.opened;
  ws.close(1000, "done");
  assertEquals(ws.readyState, WebSocketClient.CLOSING);
  ws.send("dropped after close");
  ws.close(4000); // ignored: already closing
  const closed = await observed.closed;
  const atServer = await serverClosed.promise;

  assertEquals([closed.code, closed.reason, closed.wasClean], [
    1000,
    "done",
    true,
  ]);
  assertEquals([atServer.code, atServer.reason], [1000, "done"]);
});

Deno.test("client rejects sends while connecting and invalid close arguments", async () => {
  await using server = wsServer(echo);
  const ws = new WebSocketClient(`ws://127.0.0.1:${server.addr.port}/`);
  const observed = observe(ws);
  const error = assertThrows(() => ws.send("early"), DOMException);
  assertEquals(error.name, "InvalidStateError");
  await observed.opened;
  assertEquals(
    assertThrows(() => ws.close(1001), DOMException).name,
    "InvalidAccessError",
  );
  assertEquals(
    assertThrows(() => ws.close(1000, "x".repeat(124)), DOMException).name,
    "SyntaxError",
  );
  assertThrows(() => new WebSocketClient("http://127.0.0.1/"), SyntaxError);
  assertThrows(() => new WebSocketClient("ws://127.0.0.1/#x"), SyntaxError);
  ws.close();
  await observed.closed;
});

Deno.test("a refused handshake reports the status and the vendor's JSON body", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      Response.json({
        err_code: "INVALID_AUTH",
        err_msg: "Invalid credentials.",
      }, {
        status: 401,
      }),
  );
  const ws = new WebSocketClient(
    `ws://127.0.0.1:${server.addr.port}/v1/listen?key=secret`,
  );
  const observed = observe(ws);
  const closed = await observed.closed;
  const error = failureOf(observed);

  assertEquals([closed.code, closed.wasClean], [1006, false]);
  assertEquals([error.code, error.status], ["handshake", 401]);
  assertStringIncludes(error.message, "status code: 401");
  assertEquals(JSON.parse(error.body ?? ""), {
    err_code: "INVALID_AUTH",
    err_msg: "Invalid credentials.",
  });
  assert(!error.message.includes("secret"), "the query stays out of messages");
});

Deno.test("connecting to a closed port reports a connect error and a 1006 close", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const observed = observe(new WebSocketClient(`ws://127.0.0.1:${port}/`));
  assertEquals((await observed.closed).code, 1006);
  assertEquals(failureOf(observed).code, "connect");
});

// ------------------------------------------------ client against raw peers

Deno.test("a wrong Sec-WebSocket-Accept fails the handshake without opening", async () => {
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
        "Connection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n",
    );
    await peer.readToEnd();
  });
  let opened = false;
  const observed = observe(new WebSocketClient(server.url));
  observed.opened.then(() => opened = true);
  const closed = await observed.closed;
  const error = failureOf(observed);

  assertEquals([closed.code, opened], [1006, false]);
  assertEquals(error.code, "handshake");
  assertStringIncludes(error.message, 'Sec-WebSocket-Accept "d3Jvbmc="');
});

Deno.test("a chunked 403 body is read and undone for the error", async () => {
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.write(
      "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n" +
        '9\r\n{"error":\r\n9\r\n"denied"}\r\n0\r\n\r\n',
    );
    // Keeps the connection open: the last chunk must end the read.
    await peer.readToEnd();
  });
  const observed = observe(
    new WebSocketClient(server.url, { closeTimeoutMs: 10_000 }),
  );
  await observed.closed;
  const error = failureOf(observed);
  assertEquals([error.status, error.body], [403, '{"error":"denied"}']);
});

Deno.test("each client frame is masked with a fresh random mask", async () => {
  const raw = Promise.withResolvers<Uint8Array>();
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.upgrade();
    raw.resolve(await peer.readBytes(22)); // two 11-byte "hello" frames
    await peer.readToEnd();
  });
  const ws = new WebSocketClient(server.url, { closeTimeoutMs: 50 });
  const observed = observe(ws);
  await observed.opened;
  ws.send("hello");
  ws.send("hello");
  const bytes = await raw.promise;
  ws.close();
  await observed.closed;

  assertEquals([bytes[0], bytes[1], bytes[11], bytes[12]], [
    0x81,
    0x85,
    0x81,
    0x85,
  ]);
  assertNotEquals(bytes.subarray(2, 6), bytes.subarray(13, 17));
  assertNotEquals(bytes.subarray(6, 11), encoder.encode("hello"));
});

Deno.test("frames the server sends with its 101 are delivered", async () => {
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.upgrade(serverFrame(frame(OPCODE.text, '{"type":"Metadata"}')));
    assertEquals(closeOf(await peer.readFrame()).code, 1000);
    await peer.write(
      serverFrame(frame(OPCODE.close, encodeClosePayload(1000))),
    );
  });
  const ws = new WebSocketClient(server.url);
  const observed = observe(ws);
  await observed.received(1);
  ws.close(1000);
  assertEquals((await observed.closed).wasClean, true);
  assertEquals(observed.messages, ['{"type":"Metadata"}']);
});

Deno.test("a fragmented message with a ping inside arrives whole, and the ping is answered", async () => {
  const pong = Promise.withResolvers<Frame | null>();
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.upgrade();
    const bytes = encoder.encode("fragmented ✓ message");
    await peer.write(
      serverFrame(frame(OPCODE.text, bytes.subarray(0, 12), false)),
    );
    await peer.write(serverFrame(frame(OPCODE.ping, "are you there")));
    await peer.write(
      serverFrame(frame(OPCODE.continuation, bytes.subarray(12, 15), false)),
    );
    await peer.write(
      serverFrame(frame(OPCODE.continuation, bytes.subarray(15))),
    );
    pong.resolve(await peer.readFrame());
    await peer.write(serverFrame(frame(OPCODE.close, new Uint8Array(0))));
    assertEquals(closeOf(await peer.readFrame()).code, 1005);
    assertEquals(await peer.readFrame(), null);
  });
  const observed = observe(new WebSocketClient(server.url));
  const closed = await observed.closed;
  const answer = await pong.promise;

  assertEquals(observed.messages, ["fragmented ✓ message"]);
  assertEquals(answer?.opcode, OPCODE.pong);
  assertEquals(decoder.decode(answer?.payload), "are you there");
  assertEquals([closed.code, closed.wasClean], [1005, true]);
});

Deno.test("a peer that never answers our close is cut off at the close deadline", async () => {
  const seen = Promise.withResolvers<Frame[]>();
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.upgrade();
    seen.resolve(await peer.readToEnd());
  });
  const ws = new WebSocketClient(server.url, { closeTimeoutMs: 50 });
  const observed = observe(ws);
  await observed.opened;
  ws.close(1000, "bye");
  const closed = await observed.closed;

  assertEquals([closed.code, closed.wasClean], [1006, false]);
  assertEquals(failureOf(observed).code, "close_timeout");
  const frames = await seen.promise;
  assertEquals(frames.map(closeOf), [{ code: 1000, reason: "bye" }]);
});

Deno.test("a peer dropping the connection mid-message is a 1006 close with a connection error", async () => {
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.upgrade();
    await peer.write(serverFrame(frame(OPCODE.text, "whole")));
    const partial = serverFrame(frame(OPCODE.binary, new Uint8Array(1000)));
    await peer.write(partial.subarray(0, 300));
    peer.conn.close();
  });
  const observed = observe(new WebSocketClient(server.url));
  const closed = await observed.closed;

  assertEquals(observed.messages, ["whole"]);
  assertEquals([closed.code, closed.wasClean], [1006, false]);
  const error = failureOf(observed);
  assertEquals(error.code, "connection");
  assertStringIncludes(error.message, "without a close frame");
});

for (
  const { name, bytes, maxMessageBytes, closeCode } of [
    {
      name: "an oversized message",
      bytes: serverFrame(frame(OPCODE.binary, new Uint8Array(2048))),
      maxMessageBytes: 1024,
      closeCode: 1009,
    },
    {
      name: "an oversized fragmented message",
      bytes: concat(
        serverFrame(frame(OPCODE.binary, new Uint8Array(800), false)),
        serverFrame(frame(OPCODE.continuation, new Uint8Array(800))),
      ),
      maxMessageBytes: 1024,
      closeCode: 1009,
    },
    {
      name: "text that is not UTF-8",
      bytes: serverFrame(frame(OPCODE.text, new Uint8Array([0x68, 0xff]))),
      maxMessageBytes: undefined,
      closeCode: 1007,
    },
    {
      name: "a masked frame",
      bytes: encodeFrame(frame(OPCODE.text, "x"), new Uint8Array(4)),
      maxMessageBytes: undefined,
      closeCode: 1002,
    },
  ]
) {
  Deno.test(`${name} from the server fails the connection with close code ${closeCode}`, async () => {
    const frames = Promise.withResolvers<Frame[]>();
    await using server = new RawServer(async (peer) => {
      await peer.readHead();
      await peer.upgrade();
      await peer.write(bytes);
      frames.resolve(await peer.readToEnd());
    });
    const observed = observe(
      new WebSocketClient(server.url, { maxMessageBytes }),
    );
    const closed = await observed.closed;
    const error = failureOf(observed);

    assertEquals([closed.code, closed.wasClean], [1006, false]);
    assertEquals([error.code, error.closeCode], ["protocol", closeCode]);
    assertEquals((await frames.promise).map((f) => closeOf(f).code), [
      closeCode,
    ]);
    assertEquals(observed.messages, []);
  });
}

Deno.test("close while the handshake is unanswered aborts at once", async () => {
  const asked = Promise.withResolvers<void>();
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    asked.resolve();
    await peer.readToEnd();
  });
  const ws = new WebSocketClient(server.url);
  const observed = observe(ws);
  await asked.promise;
  ws.close();
  assertEquals(ws.readyState, WebSocketClient.CLOSING);
  const closed = await observed.closed;

  assertEquals(closed.code, 1006);
  assertEquals(failureOf(observed).code, "aborted");
});

Deno.test("close right after construction aborts before the TCP connection opens", async () => {
  await using server = wsServer(echo);
  const ws = new WebSocketClient(`ws://127.0.0.1:${server.addr.port}/`);
  const observed = observe(ws);
  ws.close();
  assertEquals((await observed.closed).code, 1006);
  assertEquals(failureOf(observed).code, "aborted");
});

// --------------------------------------------------------------- wss

const TLS = new URL("./fixtures/tls/", import.meta.url);

async function tlsServer(): Promise<Deno.HttpServer<Deno.NetAddr>> {
  return wsServer(echo, {
    cert: await Deno.readTextFile(new URL("localhost.crt", TLS)),
    key: await Deno.readTextFile(new URL("localhost.key", TLS)),
  });
}

Deno.test("wss: echoes through TLS started on the NODELAY socket, trusting the test CA", async () => {
  await using server = await tlsServer();
  const ws = new WebSocketClient(`wss://localhost:${server.addr.port}/tls`, {
    caCerts: [await Deno.readTextFile(new URL("ca.crt", TLS))],
  });
  const observed = observe(ws);
  await observed.opened;
  ws.send("over tls");
  ws.send(new Uint8Array(100_000).fill(3));
  await observed.received(2);
  ws.close(1000);
  const closed = await observed.closed;

  assertEquals(observed.messages[0], "over tls");
  assertEquals(
    new Uint8Array(observed.messages[1] as ArrayBuffer),
    new Uint8Array(100_000).fill(3),
  );
  assertEquals([closed.code, closed.wasClean], [1000, true]);
});

Deno.test("wss: a certificate from an unknown CA fails as a connect error", async () => {
  await using server = await tlsServer();
  const observed = observe(
    new WebSocketClient(`wss://localhost:${server.addr.port}/tls`),
  );
  assertEquals((await observed.closed).code, 1006);
  const error = failureOf(observed);
  assertEquals(error.code, "connect");
  assertStringIncludes(error.message, "wss://localhost");
});

// ------------------------------------------- the STT session on this client

/** How a session's event stream ended: `undefined` when without error. */
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

Deno.test("a refused Deepgram handshake quotes the vendor's error code, not the key", async () => {
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

Deno.test("a vendor echoing the refused key in its body has it masked in the error", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      new Response(`bad key ${request.headers.get("authorization")}`, {
        status: 403,
      }),
  );
  const stream = session(`ws://127.0.0.1:${server.addr.port}/`, {
    headers: { Authorization: "Bearer sk-live-0123456789" },
  });
  const error = await sessionEnd(stream.events());
  await stream.close();

  assertExists(error);
  assertEquals(error.status, 403);
  assert(!error.message.includes("0123456789"), error.message);
  assertStringIncludes(error.message, '"bad key ***"');
});

Deno.test("a vendor that never answers the session's close frame ends it without error", async () => {
  const seen = Promise.withResolvers<Frame[]>();
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.upgrade();
    seen.resolve(await peer.readToEnd());
  });
  const stream = session(server.url);
  const ended = sessionEnd(stream.events());
  stream.send(new Uint8Array(320));
  await stream.close();

  assertEquals(await ended, undefined);
  const frames = await seen.promise;
  assertEquals(frames.map((f) => f.opcode), [OPCODE.binary, OPCODE.close]);
  assertEquals(closeOf(frames[1]).code, 1000);
});

Deno.test("a vendor sending invalid UTF-8 fails the session as a protocol error", async () => {
  await using server = new RawServer(async (peer) => {
    await peer.readHead();
    await peer.upgrade(
      serverFrame(frame(OPCODE.text, new Uint8Array([0x7b, 0xff]))),
    );
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
