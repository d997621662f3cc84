import {
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  EventBoundStream,
  readSse,
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
  maxEventLength?: number,
): Promise<SseMessage[]> {
  return await Array.fromAsync(readSse(streamOf(chunks), { maxEventLength }));
}

const OPENAI_STREAM = 'data: {"a":1}\n\n' +
  ": keep-alive\n\n" +
  'data: {"b":"x y"}\n\n' +
  "data: [DONE]\n\n";

function splitEvery(text: string, size: number): Uint8Array[] {
  const bytes = encoder.encode(text);
  const chunks = [];
  for (let start = 0; start < bytes.length; start += size) {
    chunks.push(bytes.slice(start, start + size));
  }
  return chunks;
}

const PARSES: {
  name: string;
  chunks: (string | Uint8Array)[];
  expected: SseMessage[];
}[] = [
  {
    name: "yields each data event in order and skips comments",
    chunks: [OPENAI_STREAM],
    expected: [
      { data: '{"a":1}' },
      { data: '{"b":"x y"}' },
      { data: "[DONE]" },
    ],
  },
  {
    name: "gives the same events when the stream is split at every byte",
    chunks: splitEvery(OPENAI_STREAM, 1),
    expected: [
      { data: '{"a":1}' },
      { data: '{"b":"x y"}' },
      { data: "[DONE]" },
    ],
  },
  {
    name: "holds a partial line until the rest arrives",
    chunks: ['data: {"con', 'tent":"hi"}\n', "\n"],
    expected: [{ data: '{"content":"hi"}' }],
  },
  {
    name: "accepts CRLF, LF and CR line endings",
    chunks: ["data: one\r\n\r\ndata: two\n\ndata: three\r\rdata: four\r\n\n"],
    expected: [
      { data: "one" },
      { data: "two" },
      { data: "three" },
      { data: "four" },
    ],
  },
  {
    // Were the LF a line of its own, it would dispatch "a" early and turn the
    // following blank line into a second, empty event boundary.
    name: "treats a CRLF split between chunks as one line ending",
    chunks: ["data: a\r", "\ndata: b\r", "\n\r", "\n"],
    expected: [{ data: "a\nb" }],
  },
  {
    name: "joins multi-line data with newlines",
    chunks: ["data: first\ndata:second\ndata\ndata:  indented\n\n"],
    expected: [{ data: "first\nsecond\n\n indented" }],
  },
  {
    name: "reports event names and the last event id",
    chunks: [
      "event: delta\nid: 7\ndata: a\n\n",
      "data: b\n\n",
      "id\ndata: c\n\n",
      "id: bad\0id\nretry: 10\nfoo: bar\ndata: d\n\n",
    ],
    expected: [
      { event: "delta", id: "7", data: "a" },
      { id: "7", data: "b" },
      { data: "c" },
      { data: "d" },
    ],
  },
  {
    name: "dispatches nothing for an event without data lines",
    chunks: ["event: ping\n\n: only a comment\n\n\n\ndata: x\n\n"],
    expected: [{ data: "x" }],
  },
  {
    name: "dispatches an empty data line as an empty event",
    chunks: ["data:\n\n"],
    expected: [{ data: "" }],
  },
  {
    // std's parser alone would dispatch { data: "cut off" } at the end.
    name: "drops an event the stream ends in the middle of",
    chunks: ["data: whole\n\ndata: cut off\n"],
    expected: [{ data: "whole" }],
  },
  {
    name: "decodes UTF-8 split between chunks and drops a byte order mark",
    chunks: splitEvery("\uFEFFdata: नमस्ते 👋\n\n", 3),
    expected: [{ data: "नमस्ते 👋" }],
  },
];

for (const { name, chunks, expected } of PARSES) {
  Deno.test(`readSse ${name}`, async () => {
    assertEquals(await readAll(chunks), expected);
  });
}

Deno.test("EventBoundStream passes bytes on up to the last blank line at once", async () => {
  const guard = new EventBoundStream();
  const writer = guard.writable.getWriter();
  const reader = guard.readable.getReader();
  const written = writer.write(encoder.encode("data: a\n\ndata: b"));
  const first = await reader.read();
  assertEquals(new TextDecoder().decode(first.value), "data: a\n\n");
  await written;
  const rest = writer.write(encoder.encode("\n\n"));
  const parts = [(await reader.read()).value, (await reader.read()).value];
  assertEquals(
    parts.map((part) => new TextDecoder().decode(part)).join(""),
    "data: b\n\n",
  );
  await rest;
  await writer.close();
  assertEquals((await reader.read()).done, true);
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

Deno.test("readSse refuses an event longer than maxEventLength", async () => {
  // std's parser alone would hold the line in memory however long it grew.
  const error = await assertRejects(
    () => readAll(["data: " + "x".repeat(20)], 16),
    SseError,
  );
  assertEquals(error.code, "event_too_long");
  assertStringIncludes(error.message, "limit of 16 bytes");
  assertStringIncludes(error.message, 'starting "data: xxxx');
});

Deno.test("readSse refuses event data longer than maxEventLength across lines", async () => {
  await assertRejects(
    () => readAll(["data: 0123456789\n", "data: 0123456789\n"], 16),
    SseError,
    "longer than the limit of 16 bytes",
  );
});

Deno.test("readSse accepts any number of events each within maxEventLength", async () => {
  const events = Array.from({ length: 50 }, (_, i) => `data: ${i}\n\n`);
  assertEquals((await readAll([events.join("")], 16)).length, 50);
});

Deno.test("EventBoundStream rejects a maxEventLength that is not a positive integer", () => {
  assertThrows(
    () => new EventBoundStream({ maxEventLength: 0 }),
    RangeError,
    'Invalid maxEventLength "0"',
  );
});
