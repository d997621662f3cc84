import {
  assertEquals,
  assertFalse,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import { ConnectApi, type ExotelApiConfig } from "../src/exotel/connect_api.ts";
import { errorResponse } from "../src/http/json.ts";
import {
  handleCallStatus,
  handlePlaceCall,
  type OutboundCallDeps,
} from "../src/routes/outbound_call.ts";
import { FakeExotelApi } from "./fakes/exotel_api.ts";

type StreamUrlOptions = Parameters<OutboundCallDeps["streamUrlFor"]>[1];

/** Our server on loopback with the two routes wired the way the router does. */
class App {
  readonly streamUrlCalls: StreamUrlOptions[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(api: ConnectApi | undefined) {
    const deps: OutboundCallDeps = {
      api,
      streamUrlFor: (request, options) => {
        this.streamUrlCalls.push(options);
        const url = new URL(
          "wss://wsuser:wspass-91c3@bot.example.test/voicebot/ws",
        );
        url.searchParams.set("sample-rate", String(options.sampleRate));
        url.searchParams.set("origin", new URL(request.url).hostname);
        for (const [key, value] of Object.entries(options.customParameters)) {
          url.searchParams.set(key, value);
        }
        return url.toString();
      },
    };
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const path = new URL(request.url).pathname;
        try {
          if (path === "/call") return await handlePlaceCall(request, deps);
          const match = path.match(/^\/call\/([^/]+)$/);
          if (match) {
            return await handleCallStatus(
              request,
              decodeURIComponent(match[1]),
              deps,
            );
          }
          return new Response("not found", { status: 404 });
        } catch (error) {
          return errorResponse(error);
        }
      },
    );
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  async postJson(body: unknown): Promise<{ status: number; json: Json }> {
    return await this.#fetch("/call", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async postForm(
    fields: Record<string, string>,
  ): Promise<{ status: number; json: Json }> {
    return await this.#fetch("/call", {
      method: "POST",
      body: new URLSearchParams(fields),
    });
  }

  async get(path: string): Promise<{ status: number; json: Json }> {
    return await this.#fetch(path, {});
  }

  async #fetch(
    path: string,
    init: RequestInit,
  ): Promise<{ status: number; json: Json }> {
    const response = await fetch(`${this.url}${path}`, init);
    const text = await response.text();
    return { status: response.status, json: JSON.parse(text) };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.shutdown();
  }
}

type Json = Record<string, unknown> & {
  error?: { status: number; code: string; message: string };
};

function apiFor(
  fake: FakeExotelApi,
  overrides: Partial<ExotelApiConfig> = {},
): ConnectApi {
  return new ConnectApi({
    ...fake.credentials,
    callerId: "08047491899",
    subdomain: "api.in.exotel.com",
    baseUrl: fake.baseUrl,
    timeoutMs: 5_000,
    ...overrides,
  });
}

function assertNoSecrets(body: Json, secrets: string[]): void {
  const text = JSON.stringify(body);
  for (const secret of secrets) {
    assertFalse(text.includes(secret), `answer leaks "${secret}": ${text}`);
  }
}

Deno.test("POST /call in stream mode dials Exotel straight to our bot and answers 201", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake));

  const { status, json } = await app.postJson({
    to: "+91 98765 43210",
    mode: "stream",
    sampleRate: 16000,
    customParameters: { lead: "L-7", attempt: 2 },
    customField: "crm-991",
    timeLimit: 900,
  });

  assertEquals(status, 201);
  assertMatch(String(json.sid), /^[0-9a-f]{32}$/);
  assertEquals(json.status, "in-progress");
  assertEquals(json.to, "+919876543210");
  assertEquals(json.from, "08047491899");
  assertEquals(json.direction, "outbound-api");
  assertEquals(json.mode, "stream");
  assertEquals(app.streamUrlCalls, [
    { sampleRate: 16000, customParameters: { lead: "L-7", attempt: "2" } },
  ]);
  const form = fake.requests[0].form;
  const sentUrl = new URL(form.get("StreamUrl") ?? "");
  assertEquals(sentUrl.password, "wspass-91c3");
  assertEquals(sentUrl.searchParams.get("sample-rate"), "16000");
  assertEquals(sentUrl.searchParams.get("lead"), "L-7");
  assertEquals(form.get("StreamType"), "bidirectional");
  assertEquals(form.get("From"), "+919876543210");
  assertEquals(form.get("CustomField"), "crm-991");
  assertEquals(form.get("TimeLimit"), "900");
  // The answer shows the URL Exotel dials, minus the bot's own credentials.
  assertEquals(
    json.streamUrl,
    "wss://***:***@bot.example.test/voicebot/ws?sample-rate=16000&origin=127.0.0.1&lead=L-7&attempt=2",
  );
  assertNoSecrets(json, ["wspass-91c3", fake.credentials.apiToken]);
});

Deno.test("POST /call defaults to flow mode when EXOTEL_APP_ID is set and takes a form body", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake, { appId: "314159" }));

  const { status, json } = await app.postForm({
    to: "09876543210",
    record: "true",
    timeOut: "25",
    callerId: "080 4749 1800",
    statusCallback: "https://hooks.example.test/status",
    statusCallbackEvents: "terminal,answered",
  });

  assertEquals(status, 201);
  assertEquals(json.mode, "flow");
  assertEquals(json.from, "08047491800");
  assertEquals(json.streamUrl, undefined);
  assertEquals(app.streamUrlCalls.length, 0);
  assertEquals(Object.fromEntries(fake.requests[0].form), {
    From: "09876543210",
    CallerId: "08047491800",
    CallType: "trans",
    Url: "http://my.exotel.com/acme1/exoml/start_voice/314159",
    Record: "true",
    TimeOut: "25",
    StatusCallback: "https://hooks.example.test/status",
    "StatusCallbackEvents[0]": "terminal",
    "StatusCallbackEvents[1]": "answered",
  });
});

Deno.test("POST /call defaults to stream mode at 8000 Hz without an app id", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake));

  const { status, json } = await app.postJson({ to: "9876543210" });

  assertEquals(status, 201);
  assertEquals(json.mode, "stream");
  assertEquals(app.streamUrlCalls, [{
    sampleRate: 8000,
    customParameters: {},
  }]);
  assertEquals(fake.requests[0].form.get("StreamType"), "bidirectional");
});

Deno.test("POST /call in flow mode without EXOTEL_APP_ID is 503 naming it", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake));

  const { status, json } = await app.postJson({
    to: "+919876543210",
    mode: "flow",
  });

  assertEquals(status, 503);
  assertEquals(json.error?.code, "not_configured");
  assertStringIncludes(json.error?.message ?? "", "EXOTEL_APP_ID");
  assertEquals(fake.requests.length, 0);
});

Deno.test("POST /call and GET /call/:sid without EXOTEL_* are 503 naming the variables", async () => {
  await using app = new App(undefined);

  for (
    const { status, json } of [
      await app.postJson({ to: "+919876543210" }),
      await app.get("/call/abc"),
    ]
  ) {
    assertEquals(status, 503);
    assertEquals(json.error?.code, "not_configured");
    for (
      const name of [
        "EXOTEL_API_KEY",
        "EXOTEL_API_TOKEN",
        "EXOTEL_ACCOUNT_SID",
        "EXOTEL_CALLER_ID",
      ]
    ) {
      assertStringIncludes(json.error?.message ?? "", name);
    }
  }
});

Deno.test("POST /call answers 400 naming the field for every bad input, before Exotel", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake));
  const to = "+919876543210";
  const cases: [Record<string, unknown>, string, string][] = [
    [{}, "invalid_number", '"to"'],
    [{ to: "call me maybe" }, "invalid_number", '"call me maybe"'],
    [{ to: ["+919876543210"] }, "invalid_number", '"to"'],
    [{ to, callerId: "0000" }, "invalid_number", '"callerId"'],
    [{ to, mode: "sip" }, "invalid_mode", '"sip"'],
    [{ to, sampleRate: 11025 }, "invalid_sample_rate", '"11025"'],
    [
      { to, customParameters: { a: "1", b: "2", c: "3", d: "4" } },
      "invalid_custom_parameters",
      "4 keys",
    ],
    [
      { to, customParameters: { note: "n".repeat(260) } },
      "invalid_custom_parameters",
      "at most 256",
    ],
    [
      { to, customParameters: { "sample-rate": "24000" } },
      "invalid_custom_parameters",
      '"sample-rate"',
    ],
    [
      { to, customParameters: { nested: { a: 1 } } },
      "invalid_custom_parameters",
      '"nested"',
    ],
    [{ to, customParameters: [1] }, "invalid_custom_parameters", "[1]"],
    [{ to, timeLimit: 14_401 }, "invalid_time_limit", '"14401"'],
    [{ to, timeLimit: "soon" }, "invalid_time_limit", '"soon"'],
    [{ to, timeOut: 0 }, "invalid_time_out", '"0"'],
    [
      { to, customField: "c".repeat(129) },
      "invalid_custom_field",
      "at most 128",
    ],
    [{ to, record: "maybe" }, "invalid_record", '"maybe"'],
    [
      { to, recordingChannels: "stereo" },
      "invalid_recording_channels",
      '"stereo"',
    ],
    [
      { to, statusCallback: "mailto:ops@example.test" },
      "invalid_status_callback",
      '"mailto:ops@example.test"',
    ],
    [
      { to, statusCallbackEvents: ["hangup"] },
      "invalid_status_callback_events",
      '"hangup"',
    ],
  ];
  for (const [body, code, quoted] of cases) {
    const { status, json } = await app.postJson(body);
    assertEquals(status, 400, JSON.stringify(body));
    assertEquals(json.error?.code, code, JSON.stringify(json));
    assertStringIncludes(json.error?.message ?? "", quoted);
  }
  assertEquals(fake.requests.length, 0);
});

Deno.test("POST /call refuses stream-only fields in flow mode", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake, { appId: "1" }));

  const { status, json } = await app.postJson({
    to: "+919876543210",
    sampleRate: 16000,
  });

  assertEquals(status, 400);
  assertEquals(json.error?.code, "invalid_sample_rate");
  assertStringIncludes(json.error?.message ?? "", 'mode "stream"');
  assertEquals(fake.requests.length, 0);
});

Deno.test("POST /call with a stream URL past 600 characters is 400 without echoing it", async () => {
  await using fake = await FakeExotelApi.start();
  const api = apiFor(fake);
  const deps: OutboundCallDeps = {
    api,
    streamUrlFor: () =>
      `wss://u:secret-pass@bot.example.test/ws?pad=${"p".repeat(600)}`,
  };

  const response = await handlePlaceCall(
    new Request("http://127.0.0.1/call", {
      method: "POST",
      body: JSON.stringify({ to: "+919876543210", mode: "stream" }),
    }),
    deps,
  ).catch(errorResponse);
  const json = await response.json();

  assertEquals(response.status, 400);
  assertEquals(json.error.code, "invalid_stream_url");
  assertStringIncludes(json.error.message, "at most 600");
  assertFalse(JSON.stringify(json).includes("secret-pass"));
  assertEquals(fake.requests.length, 0);
});

Deno.test("POST /call answers 405 to other methods", async () => {
  await using fake = await FakeExotelApi.start();
  const response = await handlePlaceCall(
    new Request("http://127.0.0.1/call", { method: "PUT" }),
    { api: apiFor(fake), streamUrlFor: () => "wss://bot.example.test/ws" },
  ).catch(errorResponse);
  await response.body?.cancel();

  assertEquals(response.status, 405);
  assertEquals(response.headers.get("allow"), "POST");
});

Deno.test("Exotel refusing our credentials is a 502 that blames the server and leaks nothing", async () => {
  await using fake = await FakeExotelApi.start();
  const apiKey = "bad-key-6d2e";
  const apiToken = "bad-token-a41f";
  await using app = new App(apiFor(fake, { apiKey, apiToken }));

  const placed = await app.postJson({ to: "+919876543210" });
  const status = await app.get("/call/abc123");

  for (const { status: code, json } of [placed, status]) {
    assertEquals(code, 502);
    assertEquals(json.error?.code, "exotel_auth_failed");
    assertStringIncludes(json.error?.message ?? "", "EXOTEL_API_KEY");
    assertStringIncludes(json.error?.message ?? "", "401");
    assertNoSecrets(json, [
      apiKey,
      apiToken,
      new TextEncoder().encode(`${apiKey}:${apiToken}`).toBase64(),
    ]);
  }
});

Deno.test("Exotel's other failures map to statuses that say whose fault they are", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake));
  const cases: [Parameters<FakeExotelApi["failNext"]>[0], number, string][] = [
    [
      { kind: "error", status: 400, message: "From is on the DND list" },
      400,
      "exotel_rejected",
    ],
    [
      { kind: "error", status: 402, message: "Insufficient balance" },
      502,
      "exotel_error",
    ],
    [
      { kind: "error", status: 403, message: "Account suspended" },
      502,
      "exotel_auth_failed",
    ],
    [
      { kind: "error", status: 404, message: "Resource not found" },
      502,
      "exotel_error",
    ],
    [
      { kind: "error", status: 429, message: "Too many requests" },
      429,
      "exotel_rate_limited",
    ],
    [
      { kind: "error", status: 500, message: "Internal error" },
      502,
      "exotel_error",
    ],
    [{ kind: "raw", status: 502, body: "<html>" }, 502, "exotel_error"],
    [
      { kind: "raw", status: 200, body: "{}", contentType: "application/json" },
      502,
      "exotel_unavailable",
    ],
  ];
  for (const [failure, expected, code] of cases) {
    fake.failNext(failure);
    const { status, json } = await app.postJson({ to: "+919876543210" });
    assertEquals(status, expected, JSON.stringify(failure));
    assertEquals(json.error?.code, code);
    if (failure.kind === "error") {
      assertStringIncludes(json.error?.message ?? "", failure.message);
    }
  }
});

Deno.test("an unreachable Exotel is 502 and a silent one is 504", async () => {
  const closed = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(),
  );
  const port = closed.addr.port;
  await closed.shutdown();
  await using fake = await FakeExotelApi.start();
  await using unreachable = new App(
    apiFor(fake, { baseUrl: `http://127.0.0.1:${port}` }),
  );
  await using slow = new App(apiFor(fake, { timeoutMs: 100 }));

  const down = await unreachable.postJson({ to: "+919876543210" });
  fake.failNext({ kind: "hang" }, { kind: "hang" });
  const placing = await slow.postJson({ to: "+919876543210" });
  const reading = await slow.get("/call/abc");

  assertEquals(down.status, 502);
  assertEquals(down.json.error?.code, "exotel_unavailable");
  for (const { status, json } of [placing, reading]) {
    assertEquals(status, 504);
    assertEquals(json.error?.code, "exotel_timeout");
    assertStringIncludes(json.error?.message ?? "", "100 ms");
  }
});

Deno.test("GET /call/:sid answers the call's details", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake));
  const placed = await app.postJson({ to: "+919876543210" });
  const sid = String(placed.json.sid);
  fake.updateCall(sid, {
    Status: "completed",
    EndTime: "2025-01-13 10:32:00",
    Duration: 120,
    Price: "2.40",
    RecordingUrl: "https://recordings.example.test/b.mp3",
  });

  const { status, json } = await app.get(`/call/${sid}`);

  assertEquals(status, 200);
  assertEquals(json.sid, sid);
  assertEquals(json.status, "completed");
  assertEquals(json.from, "+919876543210");
  assertEquals(json.direction, "outbound-api");
  assertEquals(json.startTime, "2025-01-13 10:30:00");
  assertEquals(json.endTime, "2025-01-13 10:32:00");
  assertEquals(json.duration, 120);
  assertEquals(json.price, 2.4);
  assertEquals(json.recordingUrl, "https://recordings.example.test/b.mp3");
  assertEquals(fake.requests[1].path, `/v1/Accounts/acme1/Calls/${sid}.json`);
});

Deno.test("GET /call/:sid of an unknown call is 404, of an impossible sid 400", async () => {
  await using fake = await FakeExotelApi.start();
  await using app = new App(apiFor(fake));

  const unknown = await app.get("/call/deadbeef");
  const impossible = await app.get(`/call/${encodeURIComponent("a b")}`);

  assertEquals(unknown.status, 404);
  assertEquals(unknown.json.error?.code, "call_not_found");
  assertStringIncludes(unknown.json.error?.message ?? "", '"deadbeef"');
  assertEquals(impossible.status, 400);
  assertEquals(impossible.json.error?.code, "invalid_sid");
  assertStringIncludes(impossible.json.error?.message ?? "", '"a b"');
  assertEquals(fake.requests.length, 1);
});
