import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { type ExovoiceServer, serve } from "../mod.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { buildCallRecord } from "../src/records/call_record.ts";
import { CallStore } from "../src/records/call_store.ts";
import {
  type AttemptReport,
  CallWebhook,
} from "../src/webhooks/call_webhook.ts";
import { DeliveryQueue } from "../src/webhooks/delivery_queue.ts";
import {
  signWebhookBody,
  verifyWebhookSignature,
} from "../src/webhooks/signature.ts";
import { simulateCall } from "../tools/simulator.ts";
import { until } from "./fakes/agent_call.ts";
import { FakeClock } from "./fakes/clock.ts";
import { parsePrometheusText, sampleValue } from "./fakes/prometheus_parser.ts";
import { startServerProcess } from "./fakes/server_process.ts";
import { makeSession } from "./fakes/session.ts";
import { FakeWebhookServer } from "./fakes/webhook_server.ts";

const SECRET = "test-secret-of-some-length";

function startExovoice(
  receiver: FakeWebhookServer,
  env: Record<string, string> = {},
): Promise<ExovoiceServer> {
  return serve({
    readEnv: false,
    env: {
      KV_PATH: ":memory:",
      LOG_LEVEL: "error",
      CALL_WEBHOOK_URL: receiver.url,
      CALL_WEBHOOK_SECRET: SECRET,
      CALL_WEBHOOK_RETRY_MS: "100",
      CALL_WEBHOOK_TIMEOUT_MS: "300",
      ...env,
    },
    hostname: "127.0.0.1",
    port: 0,
    logging: false,
  });
}

/** One short echo call; resolves with its CallSid once it has ended. */
async function placeCall(
  server: ExovoiceServer,
  callSid: string,
): Promise<string> {
  const report = await simulateCall({
    url: `${server.url.replace("http", "ws")}/voicebot/ws`,
    pcm: new Uint8Array(1600),
    sampleRate: 8000,
    realtime: false,
    waitForReplyMs: 100,
    callSid,
    from: "+919800000001",
    to: "08012345678",
  });
  assertEquals(report.error, undefined);
  return callSid;
}

/** Polls `read` until `done` holds of its value; fails after ~10 s of polls. */
async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
): Promise<T> {
  for (let poll = 0; poll < 500; poll++) {
    const value = await read();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("Condition not reached after 500 polls");
}

async function webhookMetrics(server: ExovoiceServer) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const families = parsePrometheusText(text);
  const value = (result: string) =>
    sampleValue(families, "exovoice_call_webhook_deliveries_total", {
      result,
    });
  return {
    delivered: value("delivered"),
    retried: value("retried"),
    failed: value("failed"),
    pending: sampleValue(families, "exovoice_call_webhook_pending"),
  };
}

Deno.test("call webhook posts the finished call's record as GET /calls/:id returns it, signed, keyed by its id", async () => {
  await using receiver = await FakeWebhookServer.start();
  await using server = await startExovoice(receiver);
  await placeCall(server, "CA-webhook-1");
  const [delivery] = await receiver.waitForRequests(1);
  assertEquals(delivery.method, "POST");
  assertEquals(
    delivery.headers.get("content-type"),
    "application/json; charset=utf-8",
  );
  const signature = delivery.headers.get("x-exovoice-signature") ?? "";
  assertMatch(signature, /^sha256=[0-9a-f]{64}$/);
  assert(
    await verifyWebhookSignature(delivery.body, { signature, secret: SECRET }),
  );
  assert(
    !await verifyWebhookSignature(delivery.body, {
      signature,
      secret: "another-secret-entirely",
    }),
  );
  const record = JSON.parse(delivery.text);
  assertEquals(delivery.headers.get("idempotency-key"), record.id);
  assertEquals(delivery.headers.get("x-exovoice-attempt"), "1");
  assertEquals(record.callId, "CA-webhook-1");
  assertEquals(record.from, "+919800000001");
  const stored = await fetch(`${server.url}/calls/${record.id}`);
  assertEquals(await stored.text(), delivery.text);
  assertEquals(await webhookMetrics(server), {
    delivered: 1,
    retried: 0,
    failed: 0,
    pending: 0,
  });
});

Deno.test("call webhook retries a 500, a redirect and a timeout, then delivers the same record", async () => {
  await using receiver = await FakeWebhookServer.start({
    answers: [500, 302, "hang"],
    otherwise: 204,
  });
  await using server = await startExovoice(receiver);
  await placeCall(server, "CA-webhook-retry");
  const attempts = await receiver.waitForRequests(4);
  const keys = attempts.map((request) =>
    request.headers.get("idempotency-key")
  );
  assertEquals(new Set(keys).size, 1);
  assertEquals(
    attempts.map((request) => request.headers.get("x-exovoice-attempt")),
    ["1", "2", "3", "4"],
  );
  for (const attempt of attempts) {
    assertEquals(attempt.text, attempts[0].text);
    assert(
      await verifyWebhookSignature(attempt.body, {
        signature: attempt.headers.get("x-exovoice-signature"),
        secret: SECRET,
      }),
    );
  }
  // The fourth answer is counted once the deliverer has read it.
  const metrics = await eventually(
    () => webhookMetrics(server),
    (metrics) => metrics.delivered === 1,
  );
  assertEquals(metrics, { delivered: 1, retried: 3, failed: 0, pending: 0 });
  assertEquals(receiver.requests.length, 4);
});

Deno.test("call webhook gives a delivery up after CALL_WEBHOOK_MAX_ATTEMPTS and keeps why", async () => {
  const kvPath = await Deno.makeTempFile({ suffix: ".kv" });
  try {
    await using receiver = await FakeWebhookServer.start({ otherwise: 503 });
    const server = await startExovoice(receiver, {
      KV_PATH: kvPath,
      CALL_WEBHOOK_MAX_ATTEMPTS: "2",
    });
    await placeCall(server, "CA-webhook-fail");
    const attempts = await receiver.waitForRequests(2);
    const metrics = await eventually(
      () => webhookMetrics(server),
      (metrics) => metrics.failed === 1,
    );
    assertEquals(metrics, { delivered: 0, retried: 1, failed: 1, pending: 0 });
    await server.shutdown();
    assertEquals(receiver.requests.length, 2);
    const kv = await Deno.openKv(kvPath);
    try {
      const recordId = attempts[0].headers.get("idempotency-key")!;
      const failed = await new DeliveryQueue(kv).failed(recordId);
      assertEquals(failed?.attempts, 2);
      assertEquals(failed?.lastError, "HTTP 503: failure 503");
    } finally {
      kv.close();
    }
  } finally {
    await Deno.remove(kvPath);
  }
});

Deno.test("POST /calls/:id/webhook delivers a given-up record again", async () => {
  await using receiver = await FakeWebhookServer.start({ otherwise: 500 });
  await using server = await startExovoice(receiver, {
    CALL_WEBHOOK_MAX_ATTEMPTS: "1",
  });
  await placeCall(server, "CA-webhook-again");
  await eventually(() => webhookMetrics(server), (m) => m.failed === 1);
  receiver.otherwise = 200;
  // By CallSid, as an operator would look the call up.
  const response = await fetch(`${server.url}/calls/CA-webhook-again/webhook`, {
    method: "POST",
  });
  assertEquals(response.status, 202);
  const { recordId, queued } = await response.json();
  assertEquals(queued, true);
  const [, again] = await receiver.waitForRequests(2);
  assertEquals(again.headers.get("idempotency-key"), recordId);
  assertEquals(again.headers.get("x-exovoice-attempt"), "1");
  const metrics = await eventually(
    () => webhookMetrics(server),
    (m) => m.delivered === 1,
  );
  assertEquals(metrics, { delivered: 1, retried: 0, failed: 1, pending: 0 });

  const unknown = await fetch(`${server.url}/calls/nope/webhook`, {
    method: "POST",
  });
  assertEquals(unknown.status, 404);
  assertEquals((await unknown.json()).error.code, "call_not_found");
});

Deno.test("POST /calls/:id/webhook without a call webhook is a 503 saying what to set", async () => {
  await using server = await serve({
    readEnv: false,
    env: { KV_PATH: ":memory:", LOG_LEVEL: "error" },
    hostname: "127.0.0.1",
    port: 0,
    logging: false,
  });
  const response = await fetch(`${server.url}/calls/any/webhook`, {
    method: "POST",
  });
  assertEquals(response.status, 503);
  const { error } = await response.json();
  assertEquals(error.code, "webhook_not_configured");
  assertMatch(error.message, /CALL_WEBHOOK_URL/);
});

Deno.test("a delivery still pending at shutdown is made by the next server on the same KV", async () => {
  const kvPath = await Deno.makeTempFile({ suffix: ".kv" });
  try {
    await using receiver = await FakeWebhookServer.start({ otherwise: 500 });
    const first = await startExovoice(receiver, {
      KV_PATH: kvPath,
      // Long enough that the retry is due only after the restart.
      CALL_WEBHOOK_RETRY_MS: "60000",
    });
    await placeCall(first, "CA-webhook-restart");
    const [failed] = await receiver.waitForRequests(1);
    await first.shutdown();
    assertEquals(receiver.requests.length, 1);

    receiver.otherwise = 200;
    // The retry is due in a minute: a server started later finds it waiting.
    const kv = await Deno.openKv(kvPath);
    const queue = new DeliveryQueue(kv);
    const [waiting] = await queue.due(Date.now() + 120_000);
    assertEquals(waiting.value.attempts, 1);
    assertEquals(waiting.value.lastError, "HTTP 500: failure 500");
    // Bring it forward, as the minute passing would.
    const taken = await queue.take(waiting, { now: Date.now(), leaseMs: 0 });
    await queue.release(taken!, { now: Date.now() });
    kv.close();

    await using second = await startExovoice(receiver, { KV_PATH: kvPath });
    const [, delivered] = await receiver.waitForRequests(2);
    assertEquals(
      delivered.headers.get("idempotency-key"),
      failed.headers.get("idempotency-key"),
    );
    assertEquals(delivered.headers.get("x-exovoice-attempt"), "2");
    assertEquals(JSON.parse(delivered.text).callId, "CA-webhook-restart");
    assert(
      await verifyWebhookSignature(delivered.body, {
        signature: delivered.headers.get("x-exovoice-signature"),
        secret: SECRET,
      }),
    );
    const metrics = await eventually(
      () => webhookMetrics(second),
      (metrics) => metrics.delivered === 1,
    );
    assertEquals(metrics.pending, 0);
  } finally {
    await Deno.remove(kvPath);
  }
});

Deno.test("a delivery cut by a crash (SIGKILL mid-attempt) is made after a restart", async () => {
  const kvPath = await Deno.makeTempFile({ suffix: ".kv" });
  try {
    await using receiver = await FakeWebhookServer.start({
      answers: ["hang"],
      otherwise: 200,
    });
    const env = {
      KV_PATH: kvPath,
      CALL_WEBHOOK_URL: receiver.url,
      CALL_WEBHOOK_SECRET: SECRET,
      CALL_WEBHOOK_TIMEOUT_MS: "1000",
    };
    const first = startServerProcess(env);
    const report = await simulateCall({
      url: `ws://127.0.0.1:${await first.port}/voicebot/ws`,
      pcm: new Uint8Array(1600),
      sampleRate: 8000,
      realtime: false,
      waitForReplyMs: 100,
      callSid: "CA-webhook-crash",
    });
    assertEquals(report.error, undefined);
    // The first attempt hangs at the receiver; the server dies during it.
    const [cut] = await receiver.waitForRequests(1);
    await first.stop("SIGKILL");

    const second = startServerProcess(env);
    try {
      await second.port;
      // Due again once the dead instance's lease runs out.
      const [, delivered] = await receiver.waitForRequests(2);
      assertEquals(
        delivered.headers.get("idempotency-key"),
        cut.headers.get("idempotency-key"),
      );
      assertEquals(delivered.headers.get("x-exovoice-attempt"), "2");
      assertEquals(delivered.text, cut.text);
      assertEquals(JSON.parse(delivered.text).callId, "CA-webhook-crash");
    } finally {
      assertEquals(await second.stop(), 0);
    }
  } finally {
    await Deno.remove(kvPath);
  }
});

Deno.test("a record written during shutdown is delivered by the next server", async () => {
  const kvPath = await Deno.makeTempFile({ suffix: ".kv" });
  try {
    await using receiver = await FakeWebhookServer.start({ otherwise: 200 });
    const first = await startExovoice(receiver, { KV_PATH: kvPath });
    // Hang up and shut down at once: the record waits in the store's batch,
    // which the drain writes after the deliverer can no longer act on it.
    const call = simulateCall({
      url: `${first.url.replace("http", "ws")}/voicebot/ws`,
      pcm: new Uint8Array(1600),
      sampleRate: 8000,
      realtime: false,
      waitForReplyMs: 100,
      callSid: "CA-webhook-drain",
    });
    await call;
    await first.shutdown();
    await using _second = await startExovoice(receiver, { KV_PATH: kvPath });
    const requests = await receiver.waitForRequests(1);
    assertEquals(JSON.parse(requests[0].text).callId, "CA-webhook-drain");
  } finally {
    await Deno.remove(kvPath);
  }
});

Deno.test("a record's onCommit mutations are committed with it, and only records saved with one queue a delivery", async () => {
  const kv = await Deno.openKv(":memory:");
  const store = new CallStore(kv, { batchMs: 0 });
  const queue = new DeliveryQueue(kv);
  try {
    const first = buildCallRecord(makeSession({ id: "first-record" }), "x");
    assert(await store.save(first));
    assertEquals(await queue.count(), 0);
    const final = buildCallRecord(makeSession({ id: "final-record" }), "x");
    assert(
      await store.save(final, {
        onCommit: (operation, record) =>
          queue.add(operation, record.id, { now: Date.now() }),
      }),
    );
    const [entry] = await queue.due(Date.now());
    assertEquals(entry.value.recordId, "final-record");
    assertEquals((await store.get("final-record"))?.id, "final-record");
  } finally {
    await store.close();
    kv.close();
  }
});

Deno.test("two takers of one delivery: only one gets it", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const queue = new DeliveryQueue(kv);
    const operation = kv.atomic();
    queue.add(operation, "rec-1", { now: 1000 });
    await operation.commit();
    const [entry] = await queue.due(1000);
    const [a, b] = await Promise.all([
      queue.take(entry, { now: 1000, leaseMs: 5000 }),
      queue.take(entry, { now: 1000, leaseMs: 5000 }),
    ]);
    assertEquals([a, b].filter(Boolean).length, 1);
    // Taken: not due again until the lease runs out.
    assertEquals(await queue.due(5999), []);
    assertEquals((await queue.due(6000)).length, 1);
    assertEquals(await queue.count(), 1);
  } finally {
    kv.close();
  }
});

Deno.test("the signature is the lowercase hex HMAC-SHA256 of the raw body", async () => {
  // RFC 4231-style known answer (the classic "quick brown fox" vector).
  assertEquals(
    await signWebhookBody(
      "The quick brown fox jumps over the lazy dog",
      "key",
    ),
    "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
  );
  assert(
    await verifyWebhookSignature(
      "The quick brown fox jumps over the lazy dog",
      {
        signature:
          "SHA256=F7BC83F430538424B13298E6AA6FB143EF4D59A14946175997479DBC2D1A3CD8",
        secret: "key",
      },
    ),
  );
  assert(
    !await verifyWebhookSignature("x", { signature: null, secret: "key" }),
  );
});

Deno.test("CALL_WEBHOOK_* mistakes stop startup naming the variable", async (t) => {
  const cases: [string, Record<string, string>, string, RegExp][] = [
    [
      "a URL that is not http(s)",
      { CALL_WEBHOOK_URL: "ftp://x", CALL_WEBHOOK_SECRET: SECRET },
      "CALL_WEBHOOK_URL",
      /Invalid CALL_WEBHOOK_URL "ftp:\/\/x": expected an http\(s\):\/\/ URL/,
    ],
    [
      "a URL without a secret",
      { CALL_WEBHOOK_URL: "https://crm.example/hook" },
      "CALL_WEBHOOK_SECRET",
      /Missing CALL_WEBHOOK_SECRET: .*at least 16 characters/,
    ],
    [
      "a short secret",
      {
        CALL_WEBHOOK_URL: "https://crm.example/hook",
        CALL_WEBHOOK_SECRET: "short",
      },
      "CALL_WEBHOOK_SECRET",
      /Invalid CALL_WEBHOOK_SECRET: .*at least 16 characters/,
    ],
    [
      "a secret without a URL",
      { CALL_WEBHOOK_SECRET: SECRET },
      "CALL_WEBHOOK_URL",
      /Missing CALL_WEBHOOK_URL/,
    ],
    [
      "attempts out of range",
      {
        CALL_WEBHOOK_URL: "https://crm.example/hook",
        CALL_WEBHOOK_SECRET: SECRET,
        CALL_WEBHOOK_MAX_ATTEMPTS: "0",
      },
      "CALL_WEBHOOK_MAX_ATTEMPTS",
      /Invalid CALL_WEBHOOK_MAX_ATTEMPTS "0": expected a whole number from 1 to 100/,
    ],
  ];
  for (const [name, env, variable, message] of cases) {
    await t.step(name, () => {
      try {
        loadConfig(env);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        assertEquals(error.variable, variable);
        assertMatch(error.message, message);
        assert(!error.message.includes("short"), "the secret is never echoed");
        return;
      }
      throw new Error("expected a ConfigError");
    });
  }
  await assertRejects(
    () =>
      serve({
        readEnv: false,
        env: { KV_PATH: ":memory:", CALL_WEBHOOK_URL: "https://x.example" },
        logging: false,
      }),
    ConfigError,
  );
});

/**
 * A CallWebhook on a FakeClock posting to `receiver`, with one delivery
 * queued and started; `attempts` lists each attempt's report as it ends.
 */
async function webhookOnClock(
  receiver: FakeWebhookServer,
  config: { maxAttempts: number; maxAgeS: number },
) {
  const clock = new FakeClock();
  const kv = await Deno.openKv(":memory:");
  const queue = new DeliveryQueue(kv);
  const attempts: AttemptReport[] = [];
  const webhook = new CallWebhook({
    config: {
      url: receiver.url,
      secret: SECRET,
      timeoutMs: 5000,
      retryMs: 1000,
      ...config,
    },
    queue,
    loadRecord: (id) => Promise.resolve({ id }),
    // Only the retry schedule wakes it: no look at the queue in between.
    pollMs: 86_400_000,
    clock,
    onAttempt: (attempt) => attempts.push(attempt),
  });
  const operation = kv.atomic();
  webhook.add(operation, "rec-clock");
  await operation.commit();
  webhook.start();
  /** Waits (on real time: the POST and KV writes) for attempt `n` to end and the next wake to be set. */
  const attempted = async (n: number) => {
    await until(() => attempts.length >= n, `attempt ${n}`);
    await until(() => clock.pending === 1, `the wake after attempt ${n}`);
  };
  return {
    clock,
    attempts,
    attempted,
    queue,
    async [Symbol.asyncDispose]() {
      await webhook.close();
      kv.close();
    },
  };
}

/** Makes `Math.random` answer `value` until disposed: the retry jitter, fixed. */
function fixRandom(value: number): Disposable {
  const random = Math.random;
  Math.random = () => value;
  return { [Symbol.dispose]: () => Math.random = random };
}

Deno.test("call webhook retries on the clock, each wait 0.8-1.2 × CALL_WEBHOOK_RETRY_MS doubled per attempt, never early", async (t) => {
  // The jitter draw, and the waits before attempts 2, 3 and 4 it gives.
  const table: Array<[number, number[]]> = [
    [0, [800, 1600, 3200]],
    [0.5, [1000, 2000, 4000]],
    [0.999, [1200, 2399, 4798]],
  ];
  for (const [draw, waits] of table) {
    await t.step(
      `jitter draw ${draw}: waits ${waits.join(", ")} ms`,
      async () => {
        using _fixed = fixRandom(draw);
        await using receiver = await FakeWebhookServer.start({
          answers: [500, 500, 500],
          otherwise: 204,
        });
        await using hook = await webhookOnClock(receiver, {
          maxAttempts: 10,
          maxAgeS: 86_400,
        });
        await hook.attempted(1);
        for (const [index, waitMs] of waits.entries()) {
          const attempt = index + 2;
          await hook.clock.advance(waitMs - 1);
          assertEquals(
            receiver.requests.length,
            attempt - 1,
            `attempt ${attempt} early`,
          );
          // The wake fires exactly at the due time, where advance stops.
          await hook.clock.advance(1);
          await receiver.waitForRequests(attempt);
          if (attempt < 4) await hook.attempted(attempt);
        }
        await until(() => hook.attempts.length === 4, "the delivery");
        assertEquals(hook.attempts.map((attempt) => attempt.result), [
          "retried",
          "retried",
          "retried",
          "delivered",
        ]);
      },
    );
  }
});

Deno.test("call webhook gives up when the next retry would come after CALL_WEBHOOK_MAX_AGE_S on the clock", async () => {
  using _fixed = fixRandom(0.5);
  await using receiver = await FakeWebhookServer.start({ otherwise: 500 });
  // Attempts at 0, 1 s, 3 s and 7 s after queueing; the next would be at
  // 15 s, past the 10 s maximum age, so the fourth failure gives up.
  await using hook = await webhookOnClock(receiver, {
    maxAttempts: 100,
    maxAgeS: 10,
  });
  await hook.attempted(1);
  await hook.clock.advance(1000);
  await hook.attempted(2);
  await hook.clock.advance(2000);
  await hook.attempted(3);
  await hook.clock.advance(4000);
  await until(() => hook.attempts.length === 4, "the fourth attempt");
  assertEquals(hook.attempts.map((attempt) => attempt.result), [
    "retried",
    "retried",
    "retried",
    "failed",
  ]);
  const failed = await hook.queue.failed("rec-clock");
  assertEquals([failed?.attempts, failed?.lastError], [
    4,
    "HTTP 500: failure 500",
  ]);
  assertEquals(failed?.failedAt, Date.UTC(2026, 11, 3) + 7000);
  await hook.clock.advance(60_000);
  assertEquals(receiver.requests.length, 4, "nothing tried after giving up");
});
