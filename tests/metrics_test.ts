import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { createEchoBot } from "../src/bots/echo.ts";
import { Call, type CallSettings } from "../src/call/call.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { createSocketPair } from "../src/call/socket.ts";
import { ExovoiceMetrics } from "../src/metrics/exovoice_metrics.ts";
import * as promClient from "prom-client";
import { PROMETHEUS_CONTENT_TYPE } from "../src/metrics/prometheus.ts";
import {
  InvalidMetricError,
  MetricsRegistry,
} from "../src/metrics/registry.ts";
import { callOutcome } from "../src/records/call_record.ts";
import { handleMetrics } from "../src/routes/metrics.ts";
import { FakeClock } from "./fakes/clock.ts";
import {
  ExpositionError,
  parsePrometheusText,
  sampleValue,
} from "./fakes/prometheus_parser.ts";
import { makeSession } from "./fakes/session.ts";

Deno.test("the registry renders counters, gauges and histograms in the 0.0.4 text format", async () => {
  const registry = new MetricsRegistry();
  const requests = registry.counter({
    name: "http_requests_total",
    help: "Requests handled.",
    labelNames: ["method", "code"],
  });
  requests.inc({ method: "GET", code: "200" }, 3);
  requests.inc({ code: "404", method: "POST" });
  registry.gauge({ name: "temperature", help: "Heat." }).set({}, -1.5);
  const latency = registry.histogram({
    name: "latency_seconds",
    help: "Latency.",
    labelNames: ["stage"],
    buckets: [0.1, 0.5, 1],
  });
  for (const value of [0.05, 0.1, 0.3, 2]) {
    latency.observe({ stage: "a" }, value);
  }
  latency.observe({ stage: "b" }, 0.7);
  latency.observe({ stage: "b" }, NaN);
  assertEquals(
    await registry.render(),
    [
      "# HELP http_requests_total Requests handled.",
      "# TYPE http_requests_total counter",
      'http_requests_total{method="GET",code="200"} 3',
      'http_requests_total{method="POST",code="404"} 1',
      "",
      "# HELP temperature Heat.",
      "# TYPE temperature gauge",
      "temperature -1.5",
      "",
      "# HELP latency_seconds Latency.",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{le="0.1",stage="a"} 2',
      'latency_seconds_bucket{le="0.5",stage="a"} 3',
      'latency_seconds_bucket{le="1",stage="a"} 3',
      'latency_seconds_bucket{le="+Inf",stage="a"} 4',
      'latency_seconds_sum{stage="a"} 2.45',
      'latency_seconds_count{stage="a"} 4',
      'latency_seconds_bucket{le="0.1",stage="b"} 0',
      'latency_seconds_bucket{le="0.5",stage="b"} 0',
      'latency_seconds_bucket{le="1",stage="b"} 1',
      'latency_seconds_bucket{le="+Inf",stage="b"} 1',
      'latency_seconds_sum{stage="b"} 0.7',
      'latency_seconds_count{stage="b"} 1',
      "",
    ].join("\n"),
  );
  assertEquals(
    PROMETHEUS_CONTENT_TYPE,
    "text/plain; version=0.0.4; charset=utf-8",
  );
});

Deno.test("label values escape backslash, quote and newline; HELP escapes backslash and newline", async () => {
  const registry = new MetricsRegistry();
  registry.counter({
    name: "odd_total",
    help: 'Path C:\\temp\nsecond "line".',
    labelNames: ["value"],
  }).inc({ value: 'a\\b"c\nd' });
  const text = await registry.render();
  assertEquals(
    text,
    [
      '# HELP odd_total Path C:\\\\temp\\nsecond "line".',
      "# TYPE odd_total counter",
      'odd_total{value="a\\\\b\\"c\\nd"} 1',
      "",
    ].join("\n"),
  );
  const parsed = parsePrometheusText(text);
  assertEquals(parsed.get("odd_total")?.help, 'Path C:\\temp\nsecond "line".');
  assertEquals(parsed.get("odd_total")?.samples[0].labels, {
    value: 'a\\b"c\nd',
  });
});

Deno.test("special values render as +Inf and NaN", async () => {
  const registry = new MetricsRegistry();
  const gauge = registry.gauge({
    name: "edge",
    help: "Edge values.",
    labelNames: ["which"],
  });
  gauge.set({ which: "up" }, Infinity);
  gauge.set({ which: "none" }, NaN);
  gauge.set({ which: "big" }, 1e21);
  const parsed = parsePrometheusText(await registry.render());
  assertEquals(sampleValue(parsed, "edge", { which: "up" }), Infinity);
  assert(Number.isNaN(sampleValue(parsed, "edge", { which: "none" })));
  assertEquals(sampleValue(parsed, "edge", { which: "big" }), 1e21);
});

Deno.test("the registry refuses bad names, duplicates, wrong labels and bad buckets", () => {
  const registry = new MetricsRegistry();
  const counter = registry.counter({
    name: "ok_total",
    help: "Fine.",
    labelNames: ["kind"],
  });
  const cases: [() => unknown, string][] = [
    [
      () => registry.counter({ name: "1bad", help: "" }),
      'Invalid metric name "1bad"',
    ],
    [
      () => registry.counter({ name: "ok_total", help: "" }),
      'Duplicate metric name "ok_total"',
    ],
    [
      () => registry.gauge({ name: "g", help: "", labelNames: ["__reserved"] }),
      'Invalid label name "__reserved"',
    ],
    [
      () => registry.gauge({ name: "g2", help: "", labelNames: ["a", "a"] }),
      'Duplicate label name "a"',
    ],
    [
      () => registry.histogram({ name: "h", help: "", buckets: [2, 1] }),
      'Invalid buckets "2,1"',
    ],
    [
      () =>
        registry.histogram({
          name: "h2",
          help: "",
          labelNames: ["le"],
          buckets: [1],
        }),
      'Invalid label "le"',
    ],
    [() => counter.inc({ kind: "a" }, -1), 'Invalid increment "-1"'],
    [() => counter.inc({ kind: "a" }, NaN), 'Invalid increment "NaN"'],
    [() => counter.inc({ other: "a" }), 'Invalid labels {"other":"a"}'],
    [
      () => counter.inc({ other: "a", kind: "b" }),
      'Invalid labels {"other":"a","kind":"b"}',
    ],
    [() => counter.inc({}), "Invalid labels {}"],
  ];
  for (const [act, message] of cases) {
    const error = assertThrows(act, InvalidMetricError);
    assertStringIncludes((error as Error).message, message);
  }
});

Deno.test("a counter adds values collected at scrape time to its own", async () => {
  const registry = new MetricsRegistry();
  let live = 5;
  const counter = registry.counter({
    name: "frames_total",
    help: "Frames.",
    labelNames: ["direction"],
    collect: () => [{ labels: { direction: "in" }, value: live }],
  });
  counter.inc({ direction: "in" }, 10);
  counter.inc({ direction: "out" }, 2);
  const value = async (direction: string) =>
    (await registry.samples("frames_total")).find((sample) =>
      sample.labels.direction === direction
    )?.value;
  assertEquals(await value("in"), 15);
  live = 7;
  assertEquals(await value("in"), 17);
  assertEquals(await value("out"), 2);
});

Deno.test("a gauge's collected values replace its set ones with the same labels", async () => {
  const registry = new MetricsRegistry();
  const gauge = registry.gauge({
    name: "queue",
    help: "Queue.",
    labelNames: ["name"],
    collect: () => [{ labels: { name: "a" }, value: 3 }],
  });
  gauge.set({ name: "a" }, 1);
  gauge.set({ name: "b" }, 2);
  assertEquals(await registry.samples("queue"), [
    { labels: { name: "a" }, value: 3 },
    { labels: { name: "b" }, value: 2 },
  ]);
  assertEquals(await registry.samples("not_declared"), []);
});

Deno.test("two registries count apart: none uses prom-client's global registry", async () => {
  const [first, second] = [new MetricsRegistry(), new MetricsRegistry()];
  for (const registry of [first, second]) {
    registry.counter({ name: "same_total", help: "Same name." });
  }
  assertEquals(await promClient.register.metrics(), "\n");
  assertStringIncludes(await first.render(), "same_total 0");
});

Deno.test("the parser rejects what Prometheus rejects", () => {
  const bad = [
    "# TYPE x counter\nx 1\n# TYPE x counter\n",
    'x{a="b\\q"} 1\n',
    'x{a="b"} one\n',
    "x 1\ny 1\nx 2\n",
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    "x 1",
  ];
  for (const text of bad) {
    assertThrows(() => parsePrometheusText(text), ExpositionError);
  }
});

Deno.test("end reasons map to a bounded set of outcome labels", () => {
  const cases: [string, string, string][] = [
    ["stop:callended", "stop", "callended"],
    ["stop:CallEnded", "stop", "callended"],
    ["stop:", "stop", "none"],
    ["closed:1006", "closed", "1006"],
    ["closed:1000 bye now", "closed", "1000"],
    ["closed:4321 custom", "closed", "4xxx"],
    ["bot:the model said goodbye", "hangup", "none"],
    ["bot:silence", "hangup", "silence"],
    ["idle_timeout", "idle_timeout", "none"],
    ["Something Else!", "other", "none"],
  ];
  for (const [reason, outcome, detail] of cases) {
    assertEquals(callOutcome(reason), { outcome, detail }, reason);
  }
  const labels = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const random = crypto.randomUUID();
    for (
      const reason of [
        `stop:${random}`,
        `closed:${1000 + i} ${random}`,
        `bot:${random}`,
        random,
      ]
    ) {
      labels.add(JSON.stringify(callOutcome(reason)));
    }
  }
  assert(labels.size < 30, `${labels.size} label sets`);
});

interface Frame {
  event: string;
}

function startFrame() {
  return {
    event: "start",
    sequence_number: "1",
    stream_sid: "S1",
    start: {
      stream_sid: "S1",
      call_sid: "CA1",
      account_sid: "AC1",
      from: "+919876543210",
      to: "08047491899",
      media_format: { encoding: "audio/x-raw", sample_rate: "8000" },
    },
  };
}

const settings: CallSettings = {
  chunkBytes: 3200,
  leadMs: 400,
  maxBufferedBytes: 65536,
  maxFrameBytes: 16 * 1024,
  maxPreStartBytes: 8000,
};

/** Starts a real echo call over an in-memory socket, its metrics wired as the server wires them. */
function echoCall(metrics: ExovoiceMetrics, clock: FakeClock) {
  const [server, exotel] = createSocketPair();
  const received: Frame[] = [];
  exotel.listen({
    message: (data) => received.push(JSON.parse(data as string)),
    close: () => {},
  });
  const call = new Call({
    socket: server,
    clock,
    registry: new SessionRegistry(),
    settings,
    botName: "echo",
    createBot: createEchoBot,
    request: { sampleRate: 8000, remoteAddress: "127.0.0.1" },
  });
  metrics.callStarted(call.session);
  call.ended.then((reason) => metrics.callEnded(call.session, reason));
  const send = (frame: unknown) => exotel.send(JSON.stringify(frame));
  return { call, send, exotel, received };
}

function media(bytes: number) {
  return {
    event: "media",
    stream_sid: "S1",
    media: { payload: new Uint8Array(bytes).toBase64() },
  };
}

Deno.test("a scrape of real calls parses and counts frames, bytes, bad frames, DTMF and outcomes", async () => {
  const clock = new FakeClock();
  const metrics = new ExovoiceMetrics({ version: "1.2.3", instanceId: "vm-1" });
  const first = echoCall(metrics, clock);
  first.send(startFrame());
  for (let i = 0; i < 4; i++) {
    first.send(media(1600));
    await clock.advance(100);
  }
  first.send({ event: "dtmf", stream_sid: "S1", dtmf: { digit: "5" } });
  first.exotel.send("{not json");
  first.exotel.sendBinary(new Uint8Array(4));
  await clock.advance(1000);
  const second = echoCall(metrics, clock);
  second.send(startFrame());
  second.send(media(320));
  await clock.advance(100);

  const live = parsePrometheusText(await metrics.render());
  assertEquals(
    sampleValue(live, "exovoice_live_calls", { state: "started" }),
    2,
  );
  assertEquals(sampleValue(live, "exovoice_calls_started_total"), 2);
  assertEquals(
    sampleValue(live, "exovoice_frames_total", { direction: "in" }),
    1 + 4 + 1 + 2 + 1 + 1,
  );
  assertEquals(
    sampleValue(live, "exovoice_audio_bytes_total", { direction: "in" }),
    6400 + 320,
  );
  assertEquals(
    sampleValue(live, "exovoice_bad_frames_total", { kind: "invalid_json" }),
    1,
  );
  assertEquals(
    sampleValue(live, "exovoice_bad_frames_total", { kind: "binary" }),
    1,
  );
  assertEquals(sampleValue(live, "exovoice_dtmf_digits_total"), 1);
  assertEquals(
    sampleValue(live, "exovoice_info", { version: "1.2.3", instance: "vm-1" }),
    1,
  );
  const echoedBytes = sampleValue(live, "exovoice_audio_bytes_total", {
    direction: "out",
  })!;
  assert(echoedBytes >= 6400, `${echoedBytes} bytes echoed`);

  first.send({
    event: "stop",
    stream_sid: "S1",
    stop: { reason: "callended" },
  });
  second.call.end("idle_timeout");
  await clock.advance(10);
  const ended = parsePrometheusText(await metrics.render());
  assertEquals(
    sampleValue(ended, "exovoice_live_calls", { state: "started" }),
    0,
  );
  assertEquals(sampleValue(ended, "exovoice_calls_started_total"), 2);
  assertEquals(
    sampleValue(ended, "exovoice_calls_ended_total", {
      outcome: "stop",
      detail: "callended",
    }),
    1,
  );
  assertEquals(
    sampleValue(ended, "exovoice_calls_ended_total", {
      outcome: "idle_timeout",
      detail: "none",
    }),
    1,
  );
  assertEquals(
    sampleValue(ended, "exovoice_frames_total", { direction: "in" }),
    1 + 4 + 1 + 2 + 1 + 1 + 1,
  );
  assertEquals(
    sampleValue(ended, "exovoice_audio_bytes_total", { direction: "out" }),
    echoedBytes,
  );
  assertEquals(sampleValue(ended, "exovoice_call_duration_seconds_count"), 2);
  assertEquals(ended.get("exovoice_call_duration_seconds")?.type, "histogram");
});

Deno.test("counters never go down as calls end, however late the end is folded in", async () => {
  const metrics = new ExovoiceMetrics();
  const sessions = [1, 2, 3].map((n) =>
    makeSession({
      framesIn: n * 10,
      bytesIn: n * 1000,
      badFrames: { too_large: n },
    })
  );
  sessions.forEach((session) => metrics.callStarted(session));
  const totals = async () => {
    const parsed = parsePrometheusText(await metrics.render());
    return [
      sampleValue(parsed, "exovoice_frames_total", { direction: "in" }),
      sampleValue(parsed, "exovoice_audio_bytes_total", { direction: "in" }),
      sampleValue(parsed, "exovoice_bad_frames_total", { kind: "too_large" }),
      sampleValue(parsed, "exovoice_calls_started_total"),
    ];
  };
  assertEquals(await totals(), [60, 6000, 6, 3]);
  // Stopped but not folded yet: still counted, once.
  sessions[0].state = "stopped";
  assertEquals(await totals(), [60, 6000, 6, 3]);
  metrics.callEnded(sessions[0], "stop:callended");
  metrics.callEnded(sessions[0], "stop:callended");
  assertEquals(await totals(), [60, 6000, 6, 3]);
  sessions[1].framesIn += 5;
  assertEquals(await totals(), [65, 6000, 6, 3]);
  metrics.callEnded(sessions[1], "closed:1006");
  metrics.callEnded(sessions[2], "server_shutdown");
  assertEquals(await totals(), [65, 6000, 6, 3]);
  const parsed = parsePrometheusText(await metrics.render());
  assertEquals(
    sampleValue(parsed, "exovoice_live_calls", { state: "started" }),
    0,
  );
});

Deno.test("player underruns, clears and marks are exported", async () => {
  const metrics = new ExovoiceMetrics();
  const session = makeSession();
  Object.assign(session.playout, {
    underruns: 2,
    clears: 3,
    marksSent: 5,
    marksAcknowledged: 4,
    framesOut: 7,
  });
  metrics.callStarted(session);
  const parsed = parsePrometheusText(await metrics.render());
  assertEquals(sampleValue(parsed, "exovoice_playout_underruns_total"), 2);
  assertEquals(sampleValue(parsed, "exovoice_playout_clears_total"), 3);
  assertEquals(
    sampleValue(parsed, "exovoice_marks_total", { event: "sent" }),
    5,
  );
  assertEquals(
    sampleValue(parsed, "exovoice_marks_total", { event: "acknowledged" }),
    4,
  );
  assertEquals(
    sampleValue(parsed, "exovoice_frames_total", { direction: "out" }),
    7,
  );
});

Deno.test("turn latencies land in per-stage histograms, in seconds", async () => {
  const metrics = new ExovoiceMetrics();
  metrics.turnCompleted({
    stt_final: 250,
    llm_first_token: 600,
    tts_first_byte: 900,
    first_media: 950,
    first_mark: 4000,
  });
  metrics.turnCompleted({ stt_final: 120, llm_first_token: -1 });
  const parsed = parsePrometheusText(await metrics.render());
  const bucket = (stage: string, le: string) =>
    sampleValue(parsed, "exovoice_turn_latency_seconds_bucket", { stage, le });
  assertEquals(bucket("stt_final", "0.2"), 1);
  assertEquals(bucket("stt_final", "0.3"), 2);
  assertEquals(
    sampleValue(parsed, "exovoice_turn_latency_seconds_sum", {
      stage: "stt_final",
    }),
    0.37,
  );
  assertEquals(
    sampleValue(parsed, "exovoice_turn_latency_seconds_count", {
      stage: "llm_first_token",
    }),
    1,
  );
  assertEquals(bucket("first_mark", "3"), 0);
  assertEquals(bucket("first_mark", "5"), 1);
  assertEquals(bucket("first_mark", "+Inf"), 1);
});

Deno.test("auth failures and provider errors are counted with bounded labels", async () => {
  const metrics = new ExovoiceMetrics();
  metrics.authFailed("voicebot");
  metrics.authFailed("voicebot");
  metrics.authFailed("admin");
  metrics.providerError("deepgram", "timeout");
  metrics.providerError("Deepgram", "timeout");
  metrics.providerError("a provider name with spaces", "http");
  metrics.recordWriteFailed();
  const parsed = parsePrometheusText(await metrics.render());
  assertEquals(
    sampleValue(parsed, "exovoice_auth_failures_total", {
      endpoint: "voicebot",
    }),
    2,
  );
  assertEquals(
    sampleValue(parsed, "exovoice_auth_failures_total", { endpoint: "admin" }),
    1,
  );
  assertEquals(
    sampleValue(parsed, "exovoice_provider_errors_total", {
      provider: "deepgram",
      kind: "timeout",
    }),
    2,
  );
  assertEquals(
    sampleValue(parsed, "exovoice_provider_errors_total", {
      provider: "other",
      kind: "http",
    }),
    1,
  );
  assertEquals(
    sampleValue(parsed, "exovoice_call_record_write_failures_total"),
    1,
  );
});

Deno.test("every metric has HELP and TYPE, and an idle server's scrape parses", async () => {
  const text = await new ExovoiceMetrics().render();
  const parsed = parsePrometheusText(text);
  for (const family of parsed.values()) {
    assert(family.help && family.help.length > 0, family.name);
    assert(family.type !== "untyped", family.name);
  }
  assertEquals(
    sampleValue(parsed, "exovoice_turn_latency_seconds_count", {
      stage: "first_mark",
    }),
    0,
  );
  assertEquals(sampleValue(parsed, "exovoice_calls_started_total"), 0);
});

Deno.test("GET /metrics answers the text format with its content type", async () => {
  const metrics = new ExovoiceMetrics();
  const response = await handleMetrics(
    new Request("http://localhost/metrics"),
    metrics,
  );
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  assertStringIncludes(
    response.headers.get("content-type")!,
    "text/plain; version=0.0.4",
  );
  const parsed = parsePrometheusText(await response.text());
  assert(parsed.has("exovoice_live_calls"));
});

Deno.test("a call folded in without an end time is measured to now on the metrics' clock", async () => {
  const clock = new FakeClock();
  const metrics = new ExovoiceMetrics({ clock });
  const session = makeSession({ connectedAt: clock.epochMs() });
  metrics.callStarted(session);
  await clock.advance(90_000);
  metrics.callEnded(session, "stop:callended");
  const parsed = parsePrometheusText(await metrics.render());
  assertEquals(sampleValue(parsed, "exovoice_call_duration_seconds_sum"), 90);
  assertEquals(sampleValue(parsed, "exovoice_call_duration_seconds_count"), 1);
});
