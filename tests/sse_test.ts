import {
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  readSse,
  SseDecoder,
  SseError,
  type SseMessage,
} from "../src/providers/sse.ts";

const encoder = new TextEncoder();

function streamOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(
    chunks.map((chunk) =>
      typeof chunk === "string" ? encoder.encode(chunk) : chunk
    ),
  );
}

async function readAll(
  chunks: (string | Uint8Array)[],
): Promise<SseMessage[]> {
  return await Array.fromAsync(readSse(streamOf(chunks)));
}

function decodeAll(chunks: (string | Uint8Array)[]): SseMessage[] {
  const decoder = new SseDecoder();
  return chunks.flatMap((chunk) => decoder.push(chunk));
}

const OPENAI_STREAM = 'data: {"a":1}\n\n' +
  ": keep-alive\n\n" +
  'data: {"b":"x y"}\n\n' +
  "data: [DONE]\n\n";

Deno.test("readSse yields each data event in order and skips comments", async () => {
  assertEquals(await readAll([OPENAI_STREAM]), [
    { data: '{"a":1}' },
    { data: '{"b":"x y"}' },
    { data: "[DONE]" },
  ]);
});

Deno.test("readSse gives the same events when the stream is split at every byte", async () => {
  const bytes = encoder.encode(OPENAI_STREAM);
  const oneByteChunks = [...bytes].map((byte) => Uint8Array.of(byte));
  assertEquals(await readAll(oneByteChunks), await readAll([OPENAI_STREAM]));
});

Deno.test("SseDecoder holds a partial line until the rest arrives", () => {
  const decoder = new SseDecoder();
  assertEquals(decoder.push('data: {"con'), []);
  assertEquals(decoder.push('tent":"hi"}\n'), []);
  assertEquals(decoder.push("\n"), [{ data: '{"content":"hi"}' }]);
});

Deno.test("SseDecoder accepts CRLF, LF and CR line endings", () => {
  assertEquals(
    decodeAll([
      "data: one\r\n\r\ndata: two\n\ndata: three\r\rdata: four\r\n\n",
    ]),
    [
      { data: "one" },
      { data: "two" },
      { data: "three" },
      { data: "four" },
    ],
  );
});

Deno.test("SseDecoder treats a CRLF split between chunks as one line ending", () => {
  // Were the LF a line of its own, it would dispatch "a" early and turn the
  // following blank line into a second, empty event boundary.
  assertEquals(decodeAll(["data: a\r", "\ndata: b\r", "\n\r", "\n"]), [
    { data: "a\nb" },
  ]);
});

Deno.test("SseDecoder joins multi-line data with newlines", () => {
  assertEquals(
    decodeAll(["data: first\ndata:second\ndata\ndata:  indented\n\n"]),
    [{ data: "first\nsecond\n\n indented" }],
  );
});

Deno.test("SseDecoder reports event names and the last event id", () => {
  assertEquals(
    decodeAll([
      "event: delta\nid: 7\ndata: a\n\n",
      "data: b\n\n",
      "id\ndata: c\n\n",
      "id: bad\0id\nretry: 10\nfoo: bar\ndata: d\n\n",
    ]),
    [
      { event: "delta", id: "7", data: "a" },
      { id: "7", data: "b" },
      { data: "c" },
      { data: "d" },
    ],
  );
});

Deno.test("SseDecoder dispatches nothing for an event without data lines", () => {
  assertEquals(
    decodeAll(["event: ping\n\n: only a comment\n\n\n\ndata: x\n\n"]),
    [
      { data: "x" },
    ],
  );
});

Deno.test("SseDecoder dispatches an empty data line as an empty event", () => {
  assertEquals(decodeAll(["data:\n\n"]), [{ data: "" }]);
});

Deno.test("readSse drops an event the stream ends in the middle of", async () => {
  assertEquals(await readAll(["data: whole\n\ndata: cut off\n"]), [
    { data: "whole" },
  ]);
});

Deno.test("SseDecoder decodes UTF-8 split between chunks and drops a byte order mark", () => {
  const bytes = encoder.encode("\uFEFFdata: नमस्ते 👋\n\n");
  const decoder = new SseDecoder();
  const messages = [];
  for (let start = 0; start < bytes.length; start += 3) {
    messages.push(...decoder.push(bytes.subarray(start, start + 3)));
  }
  assertEquals(messages, [{ data: "नमस्ते 👋" }]);
});

Deno.test("readSse cancels its source when the consumer stops early", async () => {
  let cancelled = false;
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode("data: 1\n\ndata: 2\n\n"));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const message of readSse(source)) {
    assertEquals(message.data, "1");
    break;
  }
  assertEquals(cancelled, true);
});

Deno.test("readSse passes on an error of its source", async () => {
  let pulls = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls += 1;
      if (pulls === 1) controller.enqueue(encoder.encode("data: 1\n\n"));
      else controller.error(new TypeError("connection reset"));
    },
  });
  const seen: string[] = [];
  const error = await (async () => {
    try {
      for await (const message of readSse(source)) seen.push(message.data);
    } catch (error) {
      return error;
    }
  })();
  assertEquals(seen, ["1"]);
  assertInstanceOf(error, TypeError);
  assertEquals(error.message, "connection reset");
});

Deno.test("SseDecoder refuses a line longer than maxEventLength", () => {
  const decoder = new SseDecoder({ maxEventLength: 16 });
  const error = assertThrows(
    () => decoder.push("data: " + "x".repeat(20)),
    SseError,
  );
  assertEquals(error.code, "event_too_long");
  assertStringIncludes(error.message, "limit of 16");
});

Deno.test("SseDecoder refuses event data longer than maxEventLength across lines", () => {
  const decoder = new SseDecoder({ maxEventLength: 16 });
  assertThrows(
    () => decoder.push("data: 0123456789\ndata: 0123456789\n"),
    SseError,
    "Server-sent event data of 22 characters",
  );
});

Deno.test("SseDecoder rejects a maxEventLength that is not a positive integer", () => {
  assertThrows(
    () => new SseDecoder({ maxEventLength: 0 }),
    RangeError,
    'Invalid maxEventLength "0"',
  );
});
