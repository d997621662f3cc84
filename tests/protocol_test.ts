import { assert, assertEquals } from "@std/assert";
import {
  boundedPeerId,
  encodeClear,
  encodeMark,
  encodeMedia,
  type InboundEvent,
  parseAudioEncoding,
  parseInboundFrame,
  PEER_LIMITS,
  type ProtocolErrorCode,
} from "../src/exotel/protocol.ts";

function parse(frame: unknown): InboundEvent {
  const result = parseInboundFrame(
    typeof frame === "string" ? frame : JSON.stringify(frame),
  );
  if (!result.ok) throw result.error;
  return result.event;
}

function errorCode(frame: string): ProtocolErrorCode | undefined {
  const result = parseInboundFrame(frame);
  return result.ok ? undefined : result.error.code;
}

const pcm = new Uint8Array([1, 0, 255, 127, 0, 128]);
const payload = pcm.toBase64();

Deno.test("connected parses with or without protocol and version", () => {
  assertEquals(parse({ event: "connected" }), { event: "connected" });
  assertEquals(
    parse({ event: "connected", protocol: "Call", version: "1.0.0" }),
    {
      event: "connected",
    },
  );
});

Deno.test("start parses the documented snake_case form", () => {
  const event = parse({
    event: "start",
    sequence_number: "1",
    stream_sid: "S",
    start: {
      stream_sid: "S",
      call_sid: "C",
      account_sid: "A",
      from: "+919876543210",
      to: "08047491899",
      custom_parameters: { k: "v" },
      media_format: {
        encoding: "audio/x-raw",
        sample_rate: "8000",
        bit_rate: "16",
      },
    },
  });
  assertEquals(event, {
    event: "start",
    sequenceNumber: 1,
    streamSid: "S",
    start: {
      streamSid: "S",
      callSid: "C",
      accountSid: "A",
      from: "+919876543210",
      to: "08047491899",
      customParameters: { k: "v" },
      encoding: "audio/x-raw",
      sampleRate: 8000,
    },
  });
});

Deno.test("start parses camelCase, numbers, and the seed's top-level variant", () => {
  const camel = parse({
    event: "start",
    sequenceNumber: 1,
    streamSid: "S2",
    start: {
      streamSid: "S2",
      callSid: "C2",
      accountSid: "A2",
      from: 919876543210,
      to: "0804",
      customParameters: { lang: "hi", n: 3 },
      mediaFormat: { encoding: "raw/slin", sampleRate: 16000, bitRate: 128000 },
    },
  });
  assert(camel.event === "start");
  assertEquals(camel.start.callSid, "C2");
  assertEquals(camel.start.from, "919876543210");
  assertEquals(camel.start.customParameters, { lang: "hi", n: "3" });
  assertEquals(camel.start.sampleRate, 16000);
  assertEquals(camel.start.encoding, "raw/slin");

  const seed = parse({
    event: "start",
    stream_sid: "S3",
    callSid: "C3",
    start: {},
  });
  assert(seed.event === "start");
  assertEquals(seed.start.streamSid, "S3");
  assertEquals(seed.start.callSid, "C3");
  assertEquals(seed.start.sampleRate, undefined);
  assertEquals(seed.start.customParameters, {});
});

Deno.test("start with a missing or non-numeric rate leaves the rate unset", () => {
  for (const rate of [undefined, "", "fast", -8000]) {
    const event = parse({
      event: "start",
      start: { media_format: { sample_rate: rate } },
    });
    assert(event.event === "start");
    assertEquals(event.start.sampleRate, undefined);
  }
});

Deno.test("media decodes the payload and reads counters given as strings or numbers", () => {
  const snake = parse({
    event: "media",
    sequence_number: "3",
    stream_sid: "S",
    media: { chunk: "2", timestamp: "200", payload },
  });
  assertEquals(snake, {
    event: "media",
    sequenceNumber: 3,
    streamSid: "S",
    chunk: 2,
    timestamp: 200,
    payload: pcm,
  });
  const camel = parse({
    event: "media",
    sequenceNumber: 4,
    streamSid: "S",
    media: { chunk: 3, payload },
  });
  assert(camel.event === "media");
  assertEquals([camel.sequenceNumber, camel.chunk, camel.timestamp], [
    4,
    3,
    undefined,
  ]);
  assertEquals(camel.payload, pcm);
});

Deno.test("media accepts payloads of any length, including empty and unpadded base64", () => {
  const empty = parse({ event: "media", media: { payload: "" } });
  assert(empty.event === "media");
  assertEquals(empty.payload.length, 0);
  const unpadded = parse({
    event: "media",
    media: { payload: "AQID".slice(0, 3) },
  });
  assert(unpadded.event === "media");
  assertEquals(unpadded.payload.length, 2);
});

Deno.test("dtmf accepts 0-9, *, #, A-D and rejects anything else", () => {
  for (const digit of ["0", "5", "9", "*", "#", "A", "D"]) {
    const event = parse({ event: "dtmf", dtmf: { digit, duration: "100" } });
    assertEquals(event, {
      event: "dtmf",
      sequenceNumber: undefined,
      streamSid: undefined,
      digit,
      durationMs: 100,
    });
  }
  const numeric = parse({ event: "dtmf", dtmf: { digit: 7 } });
  assert(numeric.event === "dtmf");
  assertEquals(numeric.digit, "7");
  for (const digit of ["", "12", "x", "E", null]) {
    assertEquals(
      errorCode(JSON.stringify({ event: "dtmf", dtmf: { digit } })),
      "invalid_digit",
    );
  }
  assertEquals(errorCode('{"event":"dtmf"}'), "invalid_digit");
});

Deno.test("mark, stop and an inbound clear parse", () => {
  assertEquals(
    parse({
      event: "mark",
      sequence_number: 15,
      stream_sid: "S",
      mark: { name: "utt-3" },
    }),
    {
      event: "mark",
      sequenceNumber: 15,
      streamSid: "S",
      name: "utt-3",
    },
  );
  assertEquals(
    parse({
      event: "stop",
      stop: { call_sid: "C", account_sid: "A", reason: "callended" },
    }),
    {
      event: "stop",
      sequenceNumber: undefined,
      streamSid: undefined,
      reason: "callended",
      callSid: "C",
      accountSid: "A",
    },
  );
  const bare = parse({ event: "stop" });
  assert(bare.event === "stop");
  assertEquals(bare.reason, "unspecified");
  assertEquals(parse({ event: "clear", streamSid: "S" }).event, "clear");
});

Deno.test("every bad input class is an error with its own code, never a throw", () => {
  assertEquals(errorCode("{not json"), "invalid_json");
  assertEquals(errorCode(""), "invalid_json");
  assertEquals(errorCode("[1,2]"), "not_an_object");
  assertEquals(errorCode("null"), "not_an_object");
  assertEquals(errorCode('"media"'), "not_an_object");
  assertEquals(errorCode('{"event":"dance"}'), "unknown_event");
  assertEquals(errorCode("{}"), "unknown_event");
  // Found by fuzzing: String() of this object throws.
  assertEquals(errorCode('{"event":{"toString":0}}'), "unknown_event");
  assertEquals(
    errorCode('{"event":"media","media":{"payload":"@@@@"}}'),
    "invalid_payload",
  );
  assertEquals(
    errorCode('{"event":"media","media":{"payload":"QUJD="}}'),
    "invalid_payload",
  );
  assertEquals(errorCode('{"event":"media","media":{}}'), "missing_field");
  assertEquals(
    errorCode('{"event":"media","media":{"payload":12}}'),
    "missing_field",
  );
  assertEquals(errorCode('{"event":"mark","mark":{}}'), "missing_field");
});

Deno.test("error messages quote a short preview of the bad value", () => {
  const result = parseInboundFrame(`{"event":"${"x".repeat(500)}"}`);
  assert(!result.ok);
  assert(result.error.message.length < 120, result.error.message);
  assert(result.error.message.startsWith('Unknown event "xxx'));
});

Deno.test("outbound frames are the documented minimal snake_case frames", () => {
  const media = JSON.parse(encodeMedia('S"1', new Uint8Array(320)));
  assertEquals(media, {
    event: "media",
    stream_sid: 'S"1',
    media: { payload: new Uint8Array(320).toBase64() },
  });
  assertEquals(JSON.parse(encodeMark("S", "utt-1")), {
    event: "mark",
    stream_sid: "S",
    mark: { name: "utt-1" },
  });
  assertEquals(JSON.parse(encodeClear("S")), {
    event: "clear",
    stream_sid: "S",
  });
});

Deno.test("an outbound media payload round-trips through the parser", () => {
  const bytes = new Uint8Array(3200).map((_, i) => i * 7);
  const event = parse(encodeMedia("S", bytes));
  assert(event.event === "media");
  assertEquals(event.payload, bytes);
  assertEquals(event.streamSid, "S");
});

Deno.test("μ-law is recognised by any of its names, with or without a rate", () => {
  for (
    const name of [
      "audio/x-mulaw",
      "audio/x-mulaw;rate=8000",
      "AUDIO/X-MULAW; rate=8000",
      "mulaw",
      "mu-law",
      "μ-law",
      "ulaw",
      "u-law",
      "audio/pcmu",
      "PCMU",
      "g711_ulaw",
      "audio/basic",
    ]
  ) {
    const declared = parseAudioEncoding(name);
    assertEquals(
      [declared.encoding, declared.recognised],
      ["mulaw", true],
      name,
    );
  }
  assertEquals(parseAudioEncoding("audio/x-mulaw;rate=8000").sampleRate, 8000);
  assertEquals(parseAudioEncoding("audio/x-mulaw").sampleRate, undefined);
  assertEquals(
    parseAudioEncoding("audio/x-mulaw;rate=fast").sampleRate,
    undefined,
  );
});

Deno.test("16-bit PCM names and an empty encoding are PCM; unknown ones are PCM but flagged", () => {
  for (
    const name of [
      "audio/x-raw",
      "raw",
      "raw/slin",
      "slin16",
      "audio/l16;rate=16000",
      "linear16",
      "pcm",
      "s16le",
      "",
    ]
  ) {
    assertEquals(parseAudioEncoding(name), {
      encoding: "pcm",
      recognised: true,
      ...name.includes("rate=") ? { sampleRate: 16000 } : {},
    }, name);
  }
  for (const name of ["opus", "audio/x-alaw", "mulaw-ish", "{sessionId}"]) {
    assertEquals(parseAudioEncoding(name), {
      encoding: "pcm",
      recognised: false,
    }, name);
  }
});

Deno.test("start keeps the declared encoding, PCM when none is given", () => {
  const declared = parse({
    event: "start",
    start: {
      media_format: { encoding: "audio/x-mulaw", sample_rate: "8000" },
    },
  });
  assert(declared.event === "start");
  assertEquals(declared.start.encoding, "audio/x-mulaw");
  const camel = parse({
    event: "start",
    start: { mediaFormat: { encoding: "PCMU" } },
  });
  assert(camel.event === "start");
  assertEquals(parseAudioEncoding(camel.start.encoding).encoding, "mulaw");
  const bare = parse({ event: "start", start: {} });
  assert(bare.event === "start");
  assertEquals(parseAudioEncoding(bare.start.encoding).encoding, "pcm");
});

Deno.test("a peer's over-long strings are bounded once, where start and stop are parsed", () => {
  const long = "9".repeat(100_000);
  const event = parse({
    event: "start",
    stream_sid: long,
    start: {
      stream_sid: long,
      call_sid: long,
      account_sid: long,
      from: long,
      to: long,
      custom_parameters: Object.fromEntries(
        Array.from({ length: 500 }, (_, i) => [`${i}${long}`, long]),
      ),
    },
  });
  assert(event.event === "start");
  const { start } = event;
  const lengths: Array<[string, number, number]> = [
    ["streamSid", start.streamSid.length, PEER_LIMITS.idChars],
    ["event streamSid", event.streamSid?.length ?? 0, PEER_LIMITS.idChars],
    ["callSid", start.callSid.length, PEER_LIMITS.idChars],
    ["accountSid", start.accountSid.length, PEER_LIMITS.idChars],
    ["from", start.from.length, PEER_LIMITS.numberChars],
    ["to", start.to.length, PEER_LIMITS.numberChars],
    [
      "parameters",
      Object.keys(start.customParameters).length,
      PEER_LIMITS.parameters,
    ],
    [
      "longest parameter name",
      longest(Object.keys(start.customParameters)),
      256,
    ],
    [
      "longest parameter value",
      longest(Object.values(start.customParameters)),
      256,
    ],
  ];
  for (const [field, length, limit] of lengths) {
    assertEquals(length, limit, field);
  }
  const stop = parse({
    event: "stop",
    stop: { reason: long, call_sid: long, account_sid: long },
  });
  assert(stop.event === "stop");
  assertEquals(
    [stop.reason.length, stop.callSid?.length, stop.accountSid?.length],
    [PEER_LIMITS.reasonChars, PEER_LIMITS.idChars, PEER_LIMITS.idChars],
  );
});

Deno.test("strings within the limits, and Exotel's three parameters, pass unchanged", () => {
  const event = parse({
    event: "start",
    start: {
      call_sid: "CA1",
      from: "+919876543210",
      custom_parameters: { a: "1", b: "2", c: "3" },
    },
  });
  assert(event.event === "start");
  assertEquals(
    [event.start.callSid, event.start.from, event.start.customParameters],
    ["CA1", "+919876543210", { a: "1", b: "2", c: "3" }],
  );
  assertEquals(boundedPeerId("x".repeat(129)), "x".repeat(128));
});

function longest(texts: string[]): number {
  return Math.max(...texts.map((text) => text.length));
}
