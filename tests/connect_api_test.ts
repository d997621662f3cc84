import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  ConnectApi,
  type ExotelApiConfig,
  ExotelApiError,
  type ExotelApiErrorKind,
  InvalidCallRequestError,
  normalizePhoneNumber,
  parseCallDetails,
  type PlaceCallRequest,
} from "../src/exotel/connect_api.ts";
import { FakeExotelApi, type FakeFailure } from "./fakes/exotel_api.ts";

const STREAM_URL = "wss://bot.example.test/voicebot/ws?sample-rate=16000";

function configFor(
  fake: FakeExotelApi,
  overrides: Partial<ExotelApiConfig> = {},
): ExotelApiConfig {
  return {
    ...fake.credentials,
    callerId: "08047491899",
    subdomain: "api.in.exotel.com",
    baseUrl: fake.baseUrl,
    timeoutMs: 5_000,
    ...overrides,
  };
}

function basic(apiKey: string, apiToken: string): string {
  return `Basic ${
    new TextEncoder().encode(`${apiKey}:${apiToken}`).toBase64()
  }`;
}

/** Every string an error could leak the credentials through. */
function assertNoCredentials(error: Error, config: ExotelApiConfig): void {
  const seen = [error.message, String(error.cause ?? ""), JSON.stringify(error)]
    .join("\n");
  for (
    const secret of [
      config.apiKey,
      config.apiToken,
      basic(config.apiKey, config.apiToken).slice("Basic ".length),
    ]
  ) {
    assertFalse(seen.includes(secret), `error leaks "${secret}": ${seen}`);
  }
}

Deno.test("placeCall in flow mode posts a form with Basic auth to connect.json", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake, { appId: "123456" }));

  const call = await api.placeCall({
    to: "+91 98765-43210",
    target: { mode: "flow" },
  });

  assertEquals(fake.requests.length, 1);
  const sent = fake.requests[0];
  assertEquals(sent.method, "POST");
  assertEquals(sent.path, "/v1/Accounts/acme1/Calls/connect.json");
  assertEquals(
    sent.authorization,
    basic(fake.credentials.apiKey, fake.credentials.apiToken),
  );
  assertStringIncludes(
    sent.contentType ?? "",
    "application/x-www-form-urlencoded",
  );
  assertEquals(Object.fromEntries(sent.form), {
    From: "+919876543210",
    CallerId: "08047491899",
    CallType: "trans",
    Url: "http://my.exotel.com/acme1/exoml/start_voice/123456",
  });
  assertEquals(call.status, "in-progress");
  assertEquals(call.from, "+919876543210");
  assertEquals(call.direction, "outbound-api");
  assertEquals(call.accountSid, "acme1");
  assertEquals(fake.call(call.sid)?.Sid, call.sid);
});

Deno.test("placeCall in stream mode sends StreamUrl, StreamType and StreamName", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake));

  const call = await api.placeCall({
    to: "9876543210",
    target: { mode: "stream", streamUrl: STREAM_URL, streamName: "bot-1" },
  });

  const form = fake.requests[0].form;
  assertEquals(form.get("StreamUrl"), STREAM_URL);
  assertEquals(form.get("StreamType"), "bidirectional");
  assertEquals(form.get("StreamName"), "bot-1");
  assertFalse(form.has("Url"));
  assertEquals(form.get("From"), "9876543210");
  assertEquals(fake.requests.length, 1);
  assert(fake.call(call.sid));
});

Deno.test("placeCall sends every optional field in Exotel's names", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake, { appId: "42" }));

  await api.placeCall({
    to: "09876543210",
    target: { mode: "flow", appId: "777" },
    callerId: "+91 80 4749 1800",
    record: true,
    recordingChannels: "dual",
    timeLimit: 14_400,
    timeOut: 30,
    customField: "order-42",
    statusCallback: "https://hooks.example.test/exotel",
    statusCallbackEvents: ["terminal", "answered"],
    statusCallbackContentType: "application/json",
  });

  assertEquals(Object.fromEntries(fake.requests[0].form), {
    From: "09876543210",
    CallerId: "+918047491800",
    CallType: "trans",
    Url: "http://my.exotel.com/acme1/exoml/start_voice/777",
    Record: "true",
    RecordingChannels: "dual",
    TimeLimit: "14400",
    TimeOut: "30",
    CustomField: "order-42",
    StatusCallback: "https://hooks.example.test/exotel",
    "StatusCallbackEvents[0]": "terminal",
    "StatusCallbackEvents[1]": "answered",
    StatusCallbackContentType: "application/json",
  });
});

Deno.test("placeCall refuses requests past Exotel's limits without sending them", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake, { appId: "42" }));
  const flow: PlaceCallRequest = {
    to: "+919876543210",
    target: { mode: "flow" },
  };
  const stream = (
    streamUrl: string,
    streamName?: string,
  ): PlaceCallRequest => ({
    to: "+919876543210",
    target: { mode: "stream", streamUrl, streamName },
  });
  const cases: [PlaceCallRequest, string, string][] = [
    [{ ...flow, timeLimit: 14_401 }, "timeLimit", '"14401"'],
    [{ ...flow, timeLimit: 0 }, "timeLimit", "from 1 to 14400"],
    [{ ...flow, timeLimit: 1.5 }, "timeLimit", '"1.5"'],
    [{ ...flow, timeOut: -1 }, "timeOut", '"-1"'],
    [{ ...flow, customField: "x".repeat(129) }, "customField", "at most 128"],
    [stream(STREAM_URL, "n".repeat(33)), "streamName", "at most 32"],
    [
      stream(`wss://bot.example.test/ws?pad=${"a".repeat(600)}`),
      "streamUrl",
      "at most 600",
    ],
    [stream("https://bot.example.test/ws"), "streamUrl", '"https:"'],
    [stream("not a url"), "streamUrl", "ws://"],
    [{ ...flow, statusCallback: "ftp://x" }, "statusCallback", '"ftp://x"'],
    [
      { ...flow, statusCallbackEvents: ["hangup" as "terminal"] },
      "statusCallbackEvents",
      '"hangup"',
    ],
    [
      { ...flow, recordingChannels: "stereo" as "dual" },
      "recordingChannels",
      '"stereo"',
    ],
    [{ ...flow, to: "call me" }, "to", '"call me"'],
    [{ ...flow, callerId: "12" }, "callerId", '"12"'],
    [{ ...flow, target: { mode: "flow", appId: "../x" } }, "appId", '"../x"'],
  ];
  for (const [request, field, quoted] of cases) {
    const error = await assertRejects(
      () => api.placeCall(request),
      InvalidCallRequestError,
    );
    assertEquals(error.field, field, error.message);
    assertStringIncludes(error.message, quoted);
  }
  assertEquals(fake.requests.length, 0);
});

Deno.test("placeCall accepts values exactly at Exotel's limits", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake));
  const base = "wss://bot.example.test/ws?pad=";
  const streamUrl = base + "a".repeat(600 - base.length);

  await api.placeCall({
    to: "+919876543210",
    target: { mode: "stream", streamUrl, streamName: "n".repeat(32) },
    customField: "c".repeat(128),
    timeLimit: 1,
  });

  assertEquals(fake.requests[0].form.get("StreamUrl")?.length, 600);
});

Deno.test("placeCall in flow mode without any app id names appId", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake));

  const error = await assertRejects(
    () => api.placeCall({ to: "+919876543210", target: { mode: "flow" } }),
    InvalidCallRequestError,
  );

  assertEquals(error.field, "appId");
  assertStringIncludes(error.message, "EXOTEL_APP_ID");
  assertEquals(fake.requests.length, 0);
});

Deno.test("getCall reads status, times, duration, price and recording", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake, { appId: "1" }));
  const placed = await api.placeCall({
    to: "+919876543210",
    target: { mode: "flow" },
    customField: "order-42",
  });
  fake.updateCall(placed.sid, {
    Status: "completed",
    EndTime: "2025-01-13 10:31:05",
    Duration: "65",
    Price: "1.50",
    RecordingUrl: "https://recordings.example.test/a.mp3",
  });

  const call = await api.getCall(placed.sid);

  const sent = fake.requests[1];
  assertEquals(sent.method, "GET");
  assertEquals(sent.path, `/v1/Accounts/acme1/Calls/${placed.sid}.json`);
  assertEquals(
    sent.authorization,
    basic(fake.credentials.apiKey, fake.credentials.apiToken),
  );
  assertEquals(call.sid, placed.sid);
  assertEquals(call.status, "completed");
  assertEquals(call.startTime, "2025-01-13 10:30:00");
  assertEquals(call.endTime, "2025-01-13 10:31:05");
  assertEquals(call.duration, 65);
  assertEquals(call.price, 1.5);
  assertEquals(call.recordingUrl, "https://recordings.example.test/a.mp3");
  assertEquals(call.customField, "order-42");
  assertEquals(call.parentCallSid, undefined);
});

Deno.test("getCall of an unknown call is an http error with Exotel's 404 and message", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake));

  const error = await assertRejects(
    () => api.getCall("0123456789abcdef"),
    ExotelApiError,
  );

  assertEquals(error.kind, "http");
  assertEquals(error.status, 404);
  assertEquals(error.exotelCode, "20404");
  assertEquals(error.exotelMessage, "Call 0123456789abcdef not found");
  assertStringIncludes(error.message, "not found");
});

Deno.test("getCall refuses a sid that could escape the path, without a request", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake));

  for (const sid of ["../Calls", "a b", "", "x".repeat(129)]) {
    const error = await assertRejects(
      () => api.getCall(sid),
      InvalidCallRequestError,
    );
    assertEquals(error.field, "sid");
  }
  assertEquals(fake.requests.length, 0);
});

/** One way Exotel can fail a request, and the error it must become. */
interface FailureCase {
  name: string;
  config?: Partial<ExotelApiConfig>;
  /** Exotel's next answers; each is one request's failure. */
  answers?: FakeFailure[];
  /** Which call the client makes (each answer gets one). */
  request: "placeCall" | "getCall";
  kind: ExotelApiErrorKind;
  status?: number;
  exotelCode?: string;
  exotelMessage?: string;
  /** The whole message, or a part of it. */
  message: string | { includes: string };
}

const FAILURES: FailureCase[] = [
  {
    name: "wrong credentials give Exotel's 401 and never appear in the error",
    config: { apiKey: "wrong-key-3f9a", apiToken: "wrong-token-77c1" },
    request: "placeCall",
    kind: "http",
    status: 401,
    exotelCode: "UNAUTHORIZED",
    message: { includes: "Authentication failed" },
  },
  {
    name: "an Exotel message that echoes the credentials is redacted",
    answers: [{
      kind: "error",
      status: 400,
      message: "Bad key acme-key with token acme-token",
    }],
    config: { apiKey: "acme-key", apiToken: "acme-token" },
    request: "getCall",
    kind: "http",
    status: 400,
    message: { includes: "[redacted]" },
  },
  {
    name: "a 5xx with an HTML body is an http error carrying the status",
    answers: [{ kind: "raw", status: 503, body: "<html>down</html>" }],
    request: "placeCall",
    kind: "http",
    status: 503,
    exotelMessage: undefined,
    message: "Exotel answered 503",
  },
  {
    name: "a RestException inside a 200 answer is still an error",
    answers: [{
      kind: "raw",
      status: 200,
      contentType: "application/json",
      body: JSON.stringify({
        RestException: {
          Status: 403,
          Message: "Account suspended",
          Code: 1005,
        },
      }),
    }],
    request: "getCall",
    kind: "http",
    status: 403,
    exotelCode: "1005",
    exotelMessage: "Account suspended",
    message: { includes: "Account suspended" },
  },
  {
    name: "a success answer in XML is not a call: a protocol error",
    answers: [{
      kind: "raw",
      status: 200,
      body: "<TwilioResponse/>",
      contentType: "text/xml",
    }],
    request: "placeCall",
    kind: "protocol",
    status: 200,
    message: "Unexpected answer from Exotel: 200 with a body that is not JSON",
  },
  {
    name: "a success answer without a Sid is not a call: a protocol error",
    answers: [{
      kind: "raw",
      status: 200,
      body: '{"Call":{"Status":"queued"}}',
      contentType: "application/json",
    }],
    request: "placeCall",
    kind: "protocol",
    message:
      'Unexpected answer from Exotel: expected {"Call": {"Sid", "Status", ...}}',
  },
  {
    name: "an Exotel that never answers is a timeout error",
    config: { timeoutMs: 100 },
    answers: [{ kind: "hang" }],
    request: "placeCall",
    kind: "timeout",
    message: { includes: "100 ms" },
  },
];

Deno.test("Exotel's failures become ExotelApiErrors of the right kind, never carrying the credentials", async (t) => {
  for (const failure of FAILURES) {
    await t.step(failure.name, async () => {
      await using fake = await FakeExotelApi.start();
      const config = configFor(fake, failure.config);
      const api = new ConnectApi(config);
      if (failure.answers) fake.failNext(...failure.answers);

      const error = await assertRejects(
        () =>
          failure.request === "getCall" ? api.getCall("abc") : api.placeCall({
            to: "+919876543210",
            target: { mode: "stream", streamUrl: STREAM_URL },
          }),
        ExotelApiError,
      );

      assertEquals(error.kind, failure.kind);
      assertEquals(error.status, failure.status);
      if ("exotelCode" in failure) {
        assertEquals(error.exotelCode, failure.exotelCode);
      }
      if ("exotelMessage" in failure) {
        assertEquals(error.exotelMessage, failure.exotelMessage);
      }
      if (typeof failure.message === "string") {
        assertEquals(error.message, failure.message);
      } else {
        assertStringIncludes(error.message, failure.message.includes);
      }
      assertNoCredentials(error, config);
      assertEquals(fake.requests.length, 1, "one request, not retried");
    });
  }
});

Deno.test("an unreachable Exotel is a network error", async () => {
  const closed = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(),
  );
  const port = closed.addr.port;
  await closed.shutdown();
  const config: ExotelApiConfig = {
    apiKey: "net-key-1234",
    apiToken: "net-token-5678",
    accountSid: "acme1",
    callerId: "08047491899",
    subdomain: "api.exotel.com",
    baseUrl: `http://127.0.0.1:${port}`,
    timeoutMs: 5_000,
  };
  const api = new ConnectApi(config);

  const error = await assertRejects(() => api.getCall("abc"), ExotelApiError);

  assertEquals(error.kind, "network");
  assertEquals(error.status, undefined);
  assertStringIncludes(error.message, `http://127.0.0.1:${port}`);
  assertNoCredentials(error, config);
});

Deno.test("the caller's signal cancels a request as aborted, not timeout", async () => {
  await using fake = await FakeExotelApi.start();
  const api = new ConnectApi(configFor(fake, { timeoutMs: 60_000 }));
  fake.failNext({ kind: "hang" });
  const controller = new AbortController();

  const pending = api.getCall("abc", { signal: controller.signal });
  while (fake.requests.length === 0) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  controller.abort();
  const error = await assertRejects(() => pending, ExotelApiError);

  assertEquals(error.kind, "aborted");
});

Deno.test("the base URL comes from the subdomain in any documented spelling", () => {
  const config = {
    apiKey: "k".repeat(8),
    apiToken: "t".repeat(8),
    accountSid: "acme1",
    callerId: "08047491899",
    timeoutMs: 1000,
  };
  const cases: [Partial<ExotelApiConfig>, string][] = [
    [{ subdomain: "api.in.exotel.com" }, "https://api.in.exotel.com"],
    [{ subdomain: "@api.exotel.com" }, "https://api.exotel.com"],
    [{ subdomain: "https://api.in.exotel.com/" }, "https://api.in.exotel.com"],
    [
      { subdomain: "api.exotel.com", baseUrl: "http://127.0.0.1:9/" },
      "http://127.0.0.1:9",
    ],
  ];
  for (const [overrides, expected] of cases) {
    const api = new ConnectApi({ subdomain: "", ...config, ...overrides });
    assertEquals(api.baseUrl, expected);
  }
});

Deno.test("the constructor refuses empty credentials, bad caller ids and URLs with credentials", () => {
  const config: ExotelApiConfig = {
    apiKey: "key-1234",
    apiToken: "token-5678",
    accountSid: "acme1",
    callerId: "08047491899",
    subdomain: "api.exotel.com",
    timeoutMs: 1000,
  };
  assertThrows(
    () => new ConnectApi({ ...config, apiToken: " " }),
    TypeError,
    "apiToken",
  );
  assertThrows(
    () => new ConnectApi({ ...config, timeoutMs: 0 }),
    TypeError,
    '"0"',
  );
  assertThrows(
    () => new ConnectApi({ ...config, callerId: "exophone" }),
    InvalidCallRequestError,
    '"exophone"',
  );
  const error = assertThrows(
    () =>
      new ConnectApi({
        ...config,
        baseUrl: "https://key-1234:token-5678@api.exotel.com",
      }),
    TypeError,
  );
  assertFalse(error.message.includes("token-5678"));
  assertEquals(new ConnectApi({ ...config, appId: " " }).appId, undefined);
});

Deno.test("normalizePhoneNumber accepts E.164 and the Indian forms Exotel dials", () => {
  const cases: [string, string][] = [
    ["+919876543210", "+919876543210"],
    ["+91 98765 43210", "+919876543210"],
    ["+1-415-555-0100", "+14155550100"],
    ["09876543210", "09876543210"],
    ["9876543210", "9876543210"],
    ["919876543210", "919876543210"],
    ["080-3075-2400", "08030752400"],
    ["(080) 3075 2400", "08030752400"],
    [" 044.2345.6789 ", "04423456789"],
  ];
  for (const [input, expected] of cases) {
    assertEquals(normalizePhoneNumber(input), expected, input);
  }
});

Deno.test("normalizePhoneNumber rejects garbage quoting the value and the field", () => {
  const bad = [
    "",
    "abc",
    "+0919876543210",
    "12345",
    "5876543210",
    "98765432101234",
    "+91987654321098765",
    "0098765 43210",
    "98765x43210",
    "+",
  ];
  for (const value of bad) {
    const error = assertThrows(
      () => normalizePhoneNumber(value, { field: "callerId" }),
      InvalidCallRequestError,
    );
    assertEquals(error.field, "callerId");
    assertStringIncludes(error.message, `"${value}"`);
    assertStringIncludes(error.message, '"callerId"');
  }
});

Deno.test("parseCallDetails is liberal in value types and strict about Sid and Status", () => {
  assertEquals(
    parseCallDetails({
      Call: {
        Sid: "abc",
        Status: "No-Answer",
        From: 919876543210,
        To: null,
        Duration: 0,
        Price: "",
        Direction: "outbound-api",
      },
    }),
    {
      sid: "abc",
      status: "no-answer",
      from: "919876543210",
      direction: "outbound-api",
      duration: 0,
    },
  );
  for (const body of [null, {}, { Call: [] }, { Call: { Sid: "abc" } }]) {
    const error = assertThrows(() => parseCallDetails(body), ExotelApiError);
    assertEquals(error.kind, "protocol");
  }
  assertInstanceOf(
    assertThrows(() => parseCallDetails({ Call: { Status: "queued" } })),
    ExotelApiError,
  );
});
