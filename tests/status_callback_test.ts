import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { errorResponse } from "../src/http/json.ts";
import { RateLimiter } from "../src/http/rate_limit.ts";
import { buildCallRecord } from "../src/records/call_record.ts";
import { CallStore, openKv } from "../src/records/call_store.ts";
import {
  InvalidStatusCallbackError,
  mergeCallStatus,
  parseStatusCallback,
} from "../src/records/call_status.ts";
import {
  handleStatusCallback,
  type StatusCallbackGuard,
} from "../src/routes/status_callback.ts";

const CALLBACKS_SENT_AT = Date.parse("2025-03-01T10:05:00Z");
import { handlePassthru } from "../src/routes/passthru.ts";
import { makeSession } from "./fakes/session.ts";

/** Serves the status callback on loopback, as the server routes it, and posts to it like Exotel. */
async function withServer(
  test: (
    post: (init: RequestInit) => Promise<Response>,
    store: CallStore,
  ) => Promise<void>,
  options: {
    guard?: Partial<StatusCallbackGuard>;
    store?: ConstructorParameters<typeof CallStore>[1];
  } = {},
): Promise<void> {
  const store = new CallStore(await openKv(":memory:"), {
    ...options.store,
    ownsKv: true,
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      try {
        // The callbacks below were sent on the day of their DateUpdated.
        return await handleStatusCallback(request, store, {
          now: CALLBACKS_SENT_AT,
          ...options.guard,
        });
      } catch (error) {
        return errorResponse(error);
      }
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/api/v1/exotel/status`;
  try {
    await test((init) => fetch(url, { method: "POST", ...init }), store);
  } finally {
    await server.shutdown();
    await store.close();
  }
}

Deno.test("a multipart status callback, as Exotel posts by default, merges into the call's record", () =>
  withServer(async (post, store) => {
    const record = buildCallRecord(
      makeSession({ callId: "b6cfaf5f5cef3ca0fc937749ef960e25" }),
      "stop:callended",
    );
    await store.save(record);
    const form = new FormData();
    form.set("CallSid", "b6cfaf5f5cef3ca0fc937749ef960e25");
    form.set("Status", "completed");
    form.set("DateUpdated", "2025-03-01 10:01:05");
    form.set("RecordingUrl", "https://s3.exotel.example/rec.mp3");
    form.set("EventType", "terminal");
    form.set("ConversationDuration", "63");
    form.set("Direction", "outbound-api");
    form.set("Legs[0][OnCallDuration]", "63");
    form.set("Legs[0][Status]", "completed");
    form.set("Legs[0][AnsweredBy]", "HUMAN");
    const response = await post({ body: form });
    assertEquals(response.status, 200);
    assertEquals(await response.json(), {
      ok: true,
      callSid: "b6cfaf5f5cef3ca0fc937749ef960e25",
      status: "completed",
    });
    const call = await store.get(record.id);
    assertEquals(call?.exotel, {
      callSid: "b6cfaf5f5cef3ca0fc937749ef960e25",
      status: "completed",
      eventType: "terminal",
      events: ["terminal"],
      dateUpdated: "2025-03-01 10:01:05",
      recordingUrl: "https://s3.exotel.example/rec.mp3",
      conversationDuration: 63,
      direction: "outbound-api",
      legs: [{ onCallDuration: 63, status: "completed", answeredBy: "HUMAN" }],
    });
  }));

Deno.test("a URL-encoded status callback is read too", () =>
  withServer(async (post, store) => {
    const response = await post({
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        CallSid: "CA-form",
        Status: "no-answer",
        DateUpdated: "2025-03-01 10:00:40",
      }).toString(),
    });
    assertEquals(response.status, 200);
    await response.body?.cancel();
    assertEquals((await store.getStatus("CA-form"))?.status, "no-answer");
  }));

Deno.test("a JSON status callback with Legs and every event field is read", () =>
  withServer(async (post, store) => {
    const body = {
      CallSid: "CA-json",
      EventType: "terminal",
      DateCreated: "2025-03-01 09:59:50",
      DateUpdated: "2025-03-01 10:01:00",
      Status: "completed",
      To: "09876543210",
      From: "08047491899",
      PhoneNumberSid: "08047491899",
      StartTime: "2025-03-01 09:59:51",
      EndTime: "2025-03-01 10:01:00",
      ConversationDuration: 41,
      Direction: "outbound-api",
      CustomField: "order-42",
      RecordingUrl: "",
      Legs: [
        { OnCallDuration: 41, Status: "completed", AnsweredBy: "NA" },
        { OnCallDuration: 32, Status: "completed", AnsweredBy: "HUMAN" },
      ],
    };
    const response = await post({
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assertEquals(response.status, 200);
    await response.body?.cancel();
    assertEquals(await store.getStatus("CA-json"), {
      callSid: "CA-json",
      status: "completed",
      eventType: "terminal",
      events: ["terminal"],
      dateUpdated: "2025-03-01 10:01:00",
      dateCreated: "2025-03-01 09:59:50",
      startTime: "2025-03-01 09:59:51",
      endTime: "2025-03-01 10:01:00",
      conversationDuration: 41,
      direction: "outbound-api",
      from: "08047491899",
      to: "09876543210",
      phoneNumberSid: "08047491899",
      customField: "order-42",
      legs: [
        { onCallDuration: 41, status: "completed", answeredBy: "NA" },
        { onCallDuration: 32, status: "completed", answeredBy: "HUMAN" },
      ],
    });
  }));

Deno.test("Exotel's retries of the same callback change nothing", () =>
  withServer(async (post, store) => {
    const send = () =>
      post({
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body:
          "CallSid=CA-retry&Status=completed&EventType=terminal&DateUpdated=2025-03-01+10%3A01%3A00&ConversationDuration=20",
      });
    const first = await send();
    await first.body?.cancel();
    const once = await store.getStatus("CA-retry");
    for (let i = 0; i < 3; i++) {
      const again = await send();
      assertEquals(again.status, 200);
      await again.body?.cancel();
    }
    assertEquals(await store.getStatus("CA-retry"), once);
  }));

Deno.test("a callback without CallSid gets a JSON 400", () =>
  withServer(async (post) => {
    const response = await post({
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ Status: "completed" }),
    });
    assertEquals(response.status, 400);
    const body = await response.json();
    assertEquals(body.error.code, "invalid_status_callback");
    assertStringIncludes(body.error.message, "CallSid");
  }));

Deno.test("a huge multipart body is refused with 413", () =>
  withServer(async (post) => {
    const form = new FormData();
    form.set("CallSid", "CA-big");
    form.set("Padding", "x".repeat(100_000));
    const response = await post({ body: form });
    assertEquals(response.status, 413);
    await response.body?.cancel();
  }));

Deno.test("a callback that cannot be stored gets 503 so that Exotel retries", async () => {
  const kv = await openKv(":memory:");
  const store = new CallStore(kv);
  kv.close();
  let status = 0;
  let retryAfter: string | null = null;
  try {
    await handleStatusCallback(
      new Request("http://localhost/api/v1/exotel/status", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ CallSid: "CA-down", Status: "completed" }),
      }),
      store,
      { now: CALLBACKS_SENT_AT },
    );
  } catch (error) {
    const response = errorResponse(error);
    status = response.status;
    retryAfter = response.headers.get("retry-after");
    await response.body?.cancel();
  }
  assertEquals([status, retryAfter], [503, "5"]);
});

Deno.test("field names match in any casing and values are bounded", () => {
  const status = parseStatusCallback({
    call_sid: "CA-case",
    status: "COMPLETED",
    recordingUrl: `https://x.example/${"a".repeat(5000)}`,
    conversation_duration: "not a number",
    Legs: '[{"OnCallDuration":"12","Status":"Completed"}]',
  });
  assertEquals(status.callSid, "CA-case");
  assertEquals(status.status, "completed");
  assertEquals(status.recordingUrl?.length, 2048);
  assertEquals(status.conversationDuration, undefined);
  assertEquals(status.legs, [{ onCallDuration: 12, status: "completed" }]);
  assertThrows(
    () => parseStatusCallback({ CallSid: "  " }),
    InvalidStatusCallbackError,
  );
});

Deno.test("merging keeps fields the newer callback lacks and is order-independent", () => {
  const answered = parseStatusCallback({
    CallSid: "CA1",
    Status: "in-progress",
    EventType: "answered",
    DateUpdated: "2025-03-01 10:00:05",
    From: "08047491899",
  });
  const terminal = parseStatusCallback({
    CallSid: "CA1",
    Status: "completed",
    EventType: "terminal",
    DateUpdated: "2025-03-01 10:01:00",
    RecordingUrl: "https://x.example/r.mp3",
  });
  const inOrder = mergeCallStatus(
    mergeCallStatus(undefined, answered),
    terminal,
  );
  const late = mergeCallStatus(mergeCallStatus(undefined, terminal), answered);
  assertEquals(inOrder, late);
  assertEquals(inOrder.status, "completed");
  assertEquals(inOrder.from, "08047491899");
  assertEquals(inOrder.recordingUrl, "https://x.example/r.mp3");
  assertEquals(mergeCallStatus(inOrder, terminal), inOrder);
  assertEquals(mergeCallStatus(inOrder, answered), inOrder);
});

/** A URL-encoded callback body. */
function callback(fields: Record<string, string>): RequestInit {
  return {
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  };
}

Deno.test("a forged DateUpdated far in the future never overrides the real status, and the genuine callback afterwards still applies", () =>
  withServer(async (post, store) => {
    await store.save(
      buildCallRecord(makeSession({ callId: "CA-forged" }), "stop:callended"),
    );
    const forged = await post(callback({
      CallSid: "CA-forged",
      Status: "failed",
      EventType: "terminal",
      DateUpdated: "9999-12-31 23:59:59",
      RecordingUrl: "https://attacker.example/fake.mp3",
    }));
    assertEquals(forged.status, 200);
    await forged.body?.cancel();
    const genuine = await post(callback({
      CallSid: "CA-forged",
      Status: "completed",
      EventType: "terminal",
      DateUpdated: "2025-03-01 10:04:30",
      RecordingUrl: "https://s3.exotel.example/real.mp3",
    }));
    assertEquals(genuine.status, 200);
    await genuine.body?.cancel();
    const status = await store.getStatus("CA-forged");
    assertEquals(status?.status, "completed");
    assertEquals(status?.recordingUrl, "https://s3.exotel.example/real.mp3");
    assertEquals(status?.dateUpdated, "2025-03-01 10:04:30");
    // A late non-terminal callback, even with a newer date, does not undo the end.
    const late = await post(callback({
      CallSid: "CA-forged",
      Status: "in-progress",
      EventType: "answered",
      DateUpdated: "2025-03-01 10:04:59",
    }));
    await late.body?.cancel();
    assertEquals((await store.getStatus("CA-forged"))?.status, "completed");
  }));

Deno.test("a flood of callbacks for unknown calls keeps a bounded number of short-lived statuses and refuses the rest", () =>
  withServer(async (post, store) => {
    const answers: number[] = [];
    for (let i = 0; i < 8; i++) {
      const response = await post(callback({
        CallSid: `CA-flood-${i}`,
        Status: "completed",
      }));
      answers.push(response.status);
      await response.body?.cancel();
    }
    assertEquals(answers, [200, 200, 200, 200, 200, 429, 429, 429]);
    // A call with a record is never refused.
    await store.save(
      buildCallRecord(makeSession({ callId: "CA-real" }), "stop:callended"),
    );
    const real = await post(
      callback({ CallSid: "CA-real", Status: "completed" }),
    );
    assertEquals(real.status, 200);
    await real.body?.cancel();
    // Retries of an unknown call already kept are merged, not refused.
    const retry = await post(
      callback({ CallSid: "CA-flood-0", Status: "failed" }),
    );
    assertEquals(retry.status, 200);
    await retry.body?.cancel();
  }, { store: { maxUnknownStatuses: 5 } }));

Deno.test("an unknown call's status expires after the short lifetime", async () => {
  const kv = await openKv(":memory:");
  const store = new CallStore(kv, {
    ownsKv: true,
    maxUnknownStatuses: 1,
    unknownStatusTtlMs: 1,
  });
  await store.mergeStatus("CA-gone", { callSid: "CA-gone", events: [] });
  await new Promise((resolve) => setTimeout(resolve, 5));
  // Its room is free again once it expired.
  await store.mergeStatus("CA-next", { callSid: "CA-next", events: [] });
  await store.close();
});

Deno.test("status callbacks over the per-address rate limit get 429 with Retry-After", () =>
  withServer(async (post) => {
    const answers: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const response = await post(callback({ CallSid: "CA-rate" }));
      answers.push(response.status);
      retryAfter ??= response.headers.get("retry-after");
      await response.body?.cancel();
    }
    assertEquals(answers, [200, 200, 200, 429]);
    assertEquals(retryAfter, "60");
  }, {
    guard: {
      limiter: new RateLimiter({ limit: 3, windowMs: 60_000 }),
      clientIp: "203.0.113.9",
    },
  }));

Deno.test("with STATUS_CALLBACK_TOKEN set, a callback must carry it in the path, the query or Basic credentials", async () => {
  const store = new CallStore(await openKv(":memory:"), { ownsKv: true });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const tail = new URL(request.url).pathname.split("/")[5];
      try {
        return await handleStatusCallback(request, store, {
          token: "s3cret-token",
          pathToken: tail === undefined ? undefined : decodeURIComponent(tail),
          now: CALLBACKS_SENT_AT,
        });
      } catch (error) {
        return errorResponse(error);
      }
    },
  );
  const base = `127.0.0.1:${server.addr.port}/api/v1/exotel/status`;
  const send = async (url: string, headers: HeadersInit = {}) => {
    const response = await fetch(url, {
      method: "POST",
      ...callback({ CallSid: "CA-token", Status: "completed" }),
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...headers,
      },
    });
    const body = await response.json();
    return [response.status, body.error?.code ?? "ok"];
  };
  try {
    assertEquals(await send(`http://${base}`), [401, "unauthorized"]);
    assertEquals(await send(`http://${base}?token=wrong`), [
      401,
      "unauthorized",
    ]);
    assertEquals(await send(`http://${base}/wrong`), [401, "unauthorized"]);
    assertEquals(await send(`http://${base}/s3cret-token`), [200, "ok"]);
    assertEquals(await send(`http://${base}?token=s3cret-token`), [200, "ok"]);
    // Exotel turns https://exotel:<token>@host/… into Basic credentials.
    assertEquals(
      await send(`http://${base}`, {
        authorization: `Basic ${btoa("exotel:s3cret-token")}`,
      }),
      [200, "ok"],
    );
    assertEquals(
      await send(`http://${base}`, {
        authorization: `Basic ${btoa("exotel:nope")}`,
      }),
      [401, "unauthorized"],
    );
  } finally {
    await server.shutdown();
    await store.close();
  }
});

Deno.test("the Passthru after the Voicebot applet merges Stream[Status], Stream[Duration], Stream[RecordingUrl] and Stream[DisconnectedBy] into the call's record", async () => {
  const store = new CallStore(await openKv(":memory:"), { ownsKv: true });
  const record = buildCallRecord(
    makeSession({ callId: "CA-passthru" }),
    "stop:callended",
  );
  await store.save(record);
  await store.mergeStatus("CA-passthru", {
    callSid: "CA-passthru",
    status: "completed",
    eventType: "terminal",
    events: ["terminal"],
    dateUpdated: "2025-03-01 10:04:30",
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      handlePassthru(request, () => "end_call", {
        store,
        token: "s3cret-token",
      }),
  );
  const base = `http://127.0.0.1:${server.addr.port}/api/v1/exotel/passthru`;
  const stream = new URLSearchParams({
    CallSid: "CA-passthru",
    "Stream[Status]": "completed",
    "Stream[Duration]": "42",
    "Stream[RecordingUrl]": "https://s3.exotel.example/stream.mp3",
    "Stream[DisconnectedBy]": "bot",
  });
  try {
    // Without the token the flow is still answered, but nothing is kept.
    const untrusted = await fetch(`${base}?${stream}`, { redirect: "manual" });
    assertEquals(untrusted.status, 302);
    await untrusted.body?.cancel();
    assertEquals((await store.get(record.id))?.exotel?.stream, undefined);
    const trusted = await fetch(`${base}?${stream}&token=s3cret-token`, {
      redirect: "manual",
    });
    assertEquals(trusted.status, 302);
    assertEquals((await trusted.json()).outcome, "end_call");
    const call = await store.get(record.id);
    assertEquals(call?.exotel?.stream, {
      status: "completed",
      durationS: 42,
      recordingUrl: "https://s3.exotel.example/stream.mp3",
      disconnectedBy: "bot",
    });
    assertEquals(call?.exotel?.status, "completed");
    assertEquals(call?.exotel?.eventType, "terminal");
  } finally {
    await server.shutdown();
    await store.close();
  }
});

Deno.test("forged event types cannot grow a call's status without bound", () => {
  let status = parseStatusCallback({
    CallSid: "CA-events",
    EventType: "terminal",
  });
  for (let i = 0; i < 100; i++) {
    status = mergeCallStatus(
      status,
      parseStatusCallback({ CallSid: "CA-events", EventType: `forged-${i}` }),
    );
  }
  assertEquals(status.events.length, 16);
  assertEquals(status.events.includes("terminal"), true);
});
