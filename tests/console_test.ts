/**
 * The console without a browser: logins and softphone tokens, range
 * requests, the overview's figures, the live feed, and the HTTP rules
 * (JSON errors, cookies, CSRF, the softphone's single-use socket token)
 * against the real server on 127.0.0.1.
 */
import {
  assert,
  assertEquals,
  assertExists,
  assertMatch,
  assertThrows,
} from "@std/assert";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/server.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import {
  ConsoleSessions,
  SESSION_IDLE_MS,
  SESSION_MAX_MS,
  SOFTPHONE_TOKEN_MS,
} from "../src/console/console_sessions.ts";
import {
  parseRange,
  RangeNotSatisfiableError,
} from "../src/console/file_response.ts";
import { LiveFeed, type LiveFeedEvent } from "../src/console/live_feed.ts";
import { ConsoleApp } from "../src/console/console_app.ts";
import { ExovoiceMetrics } from "../src/metrics/exovoice_metrics.ts";
import { percentile, RecentCalls } from "../src/console/recent_calls.ts";
import { simulateCall } from "../tools/simulator.ts";
import { makeSession } from "./fakes/session.ts";
import { fixturePcm, until } from "./fakes/agent_call.ts";
import { FakeClock } from "./fakes/clock.ts";

const ADMIN_TOKEN = "console-admin-token";

Deno.test("console logins expire when idle and at their maximum age, and end at logout", async () => {
  const clock = new FakeClock();
  const sessions = new ConsoleSessions({ clock });
  const id = sessions.login();
  await clock.advance(SESSION_IDLE_MS - 1);
  assert(sessions.isValid(id));
  await clock.advance(SESSION_IDLE_MS - 1);
  assert(sessions.isValid(id), "use keeps a login alive");
  await clock.advance(SESSION_IDLE_MS + 1);
  assert(!sessions.isValid(id));

  const busy = sessions.login();
  for (let t = 0; t < SESSION_MAX_MS; t += SESSION_IDLE_MS / 2) {
    await clock.advance(SESSION_IDLE_MS / 2);
    sessions.isValid(busy);
  }
  await clock.advance(SESSION_IDLE_MS / 2);
  assert(!sessions.isValid(busy), "a login used all day still ends");

  const other = sessions.login();
  sessions.logout(other);
  assert(!sessions.isValid(other));
  assert(!sessions.isValid(undefined));
  assert(!sessions.isValid("made-up"));
});

Deno.test("softphone tokens work once and only while fresh", async () => {
  const clock = new FakeClock();
  const sessions = new ConsoleSessions({ clock });
  const grant = { bot: "echo", sampleRate: 16000, callId: "softphone-1" };
  const token = sessions.mintSoftphoneToken(grant);
  assertEquals(sessions.redeemSoftphoneToken(token), grant);
  assertEquals(sessions.redeemSoftphoneToken(token), undefined);
  const late = sessions.mintSoftphoneToken(grant);
  await clock.advance(SOFTPHONE_TOKEN_MS + 1);
  assertEquals(sessions.redeemSoftphoneToken(late), undefined);
});

Deno.test("range headers: one byte range, suffixes, open ends; past the end is unsatisfiable", () => {
  assertEquals(parseRange(null, 100), undefined);
  assertEquals(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
  assertEquals(parseRange("bytes=90-", 100), { start: 90, end: 99 });
  assertEquals(parseRange("bytes=90-500", 100), { start: 90, end: 99 });
  assertEquals(parseRange("bytes=-10", 100), { start: 90, end: 99 });
  assertEquals(parseRange("bytes=-500", 100), { start: 0, end: 99 });
  assertEquals(parseRange("bytes=0-1,5-6", 100), undefined);
  assertEquals(parseRange("items=0-1", 100), undefined);
  assertThrows(() => parseRange("bytes=100-", 100), RangeNotSatisfiableError);
  assertThrows(() => parseRange("bytes=9-3", 100), RangeNotSatisfiableError);
  assertThrows(() => parseRange("bytes=-0", 100), RangeNotSatisfiableError);
});

Deno.test("the overview counts calls per minute and latency percentiles over the last hour only", () => {
  const recent = new RecentCalls();
  const now = 10 * 3_600_000;
  recent.add({ endedAt: now - 3_700_000, outcome: "stop", turns: [] });
  for (let i = 1; i <= 20; i++) {
    recent.add({
      endedAt: now - 30_000,
      outcome: i % 2 ? "stop" : "closed",
      turns: [{ turn: 1, latenciesMs: { stt_final: i * 10, first_media: i } }],
    });
  }
  recent.add({ endedAt: now - 150_000, outcome: "hangup", turns: [] });
  const overview = recent.overview(now);
  assertEquals(overview.callsEnded, 21);
  assertEquals(overview.callsPerMinute.length, 60);
  assertEquals(overview.callsPerMinute[59], 20);
  assertEquals(overview.callsPerMinute[57], 1);
  assertEquals(overview.outcomes, { stop: 10, closed: 10, hangup: 1 });
  const stt = overview.latency.find((s) => s.stage === "stt_final")!;
  assertEquals(stt, { stage: "stt_final", count: 20, p50: 100, p95: 190 });
  const llm = overview.latency.find((s) => s.stage === "llm_first_token")!;
  assertEquals(llm, {
    stage: "llm_first_token",
    count: 0,
    p50: null,
    p95: null,
  });
  assertEquals(percentile([5], 0.95), 5);
  assertEquals(percentile([], 0.5), null);
});

Deno.test("the live feed sends a snapshot, then changes and ends, masking numbers, and stops looking when nobody listens", async () => {
  const registry = new SessionRegistry();
  const clock = new FakeClock();
  const feed = new LiveFeed(registry, { intervalMs: 250, clock });
  const events: LiveFeedEvent[] = [];
  const session = makeSession({
    state: "started",
    report: () => ({
      transcript: [
        { role: "caller", text: "Hi" },
        {
          role: "bot",
          text: "Hello there",
          heardText: "Hel",
          interrupted: true,
        },
      ],
      turns: [{ turn: 1, latenciesMs: { stt_final: 120 } }],
    }),
    live: () => ({ activity: "thinking", partial: "I need" }),
  });
  const unsubscribe = feed.subscribe((event) => events.push(event));
  assertEquals(events, [{ type: "snapshot", calls: [] }]);
  registry.add(session);
  await clock.advance(249);
  assertEquals(events.length, 1, "looked at every 250 ms, not sooner");
  await clock.advance(1);
  assertEquals(events.length, 2, "the call event");
  const added = events[1];
  assert(added.type === "call");
  assertEquals(added.call.from, "*********3210");
  assertEquals(added.call.activity, "thinking");
  assertEquals(added.call.partial, "I need");
  assertEquals(added.call.bargeIns, 1);
  await clock.advance(1000);
  assertEquals(events.length, 2, "an unchanged call is not sent again");
  registry.remove(session.id);
  await clock.advance(250);
  assertEquals(events.length, 3, "the ended event");
  assertEquals(events[2], { type: "ended", id: session.id });
  unsubscribe();
  assertEquals(feed.size, 0);
  assertEquals(clock.pending, 0, "nobody listens: nothing scheduled");
  const browser = new LiveFeed(registry, { clock });
  registry.add(makeSession({ from: "browser", to: "console" }));
  const seen: LiveFeedEvent[] = [];
  browser.subscribe((event) => seen.push(event));
  browser.close();
  assertEquals(clock.pending, 0, "close stops looking");
  assert(seen[0].type === "snapshot");
  assertEquals(seen[0].calls[0].from, "browser", "a name is not a number");
});

Deno.test("an idle live event stream sends a comment every 15 s on the clock, and stops its timers when the browser goes", async () => {
  const clock = new FakeClock();
  const webConsole = new ConsoleApp({
    registry: new SessionRegistry(),
    metrics: new ExovoiceMetrics(),
    wsPath: "/voicebot/ws",
    bots: {},
    secure: false,
    trustProxy: false,
    clock,
  });
  const response = await webConsole.handle(
    new Request("http://127.0.0.1/console/api/live"),
  );
  let received = "";
  const browser = new AbortController();
  const reading = response.body!.pipeThrough(new TextDecoderStream())
    .pipeTo(
      new WritableStream({ write: (text) => void (received += text) }),
      { signal: browser.signal },
    )
    .catch(() => {});
  await clock.advance(0);
  assertMatch(received, /^event: snapshot\n/);
  const pings = () => received.split(": ping\n\n").length - 1;
  await clock.advance(14_999);
  assertEquals(pings(), 0);
  await clock.advance(1);
  assertEquals(pings(), 1);
  await clock.advance(30_000);
  assertEquals(pings(), 3);
  browser.abort();
  await reading;
  assertEquals(clock.pending, 0, "no heartbeat or feed timer left");
  webConsole.close();
});

interface TestServer extends AsyncDisposable {
  base: string;
  server: Awaited<ReturnType<typeof startServer>>;
  login(): Promise<string>;
}

async function startConsoleServer(
  env: Record<string, string> = {},
): Promise<TestServer> {
  const server = await startServer(loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    KV_PATH: ":memory:",
    ADMIN_TOKEN,
    EXOTEL_WS_TOKEN: "exotel-secret",
    ...env,
  }));
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    base,
    server,
    async login() {
      const response = await fetch(`${base}/console/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: ADMIN_TOKEN }),
      });
      await response.body?.cancel();
      assertEquals(response.status, 200);
      return response.headers.get("set-cookie")!.split(";")[0];
    },
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return await response.json();
}

Deno.test("the console page is public, its data is not: 401 JSON without a login, and the login never takes a token from the URL", async () => {
  await using app = await startConsoleServer();
  const page = await fetch(`${app.base}/console`);
  assertEquals(page.status, 200);
  assertMatch(
    page.headers.get("content-security-policy")!,
    /script-src 'self'/,
  );
  assertMatch(await page.text(), /<main id="main"/);
  const data = await fetch(`${app.base}/console/api/overview`);
  assertEquals(data.status, 401);
  assertEquals((await json(data)).error, {
    status: 401,
    code: "unauthorized",
    message:
      "Log in to the console first: POST /console/login with the admin token",
  });
  const wrong = await fetch(`${app.base}/console/login?token=${ADMIN_TOKEN}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assertEquals(wrong.status, 401);
  await wrong.body?.cancel();
  const cookie = await app.login();
  const badId = await fetch(`${app.base}/console/api/calls/%E0%A4%A`, {
    headers: { cookie },
  });
  assertEquals(badId.status, 400);
  await badId.body?.cancel();
  const missing = await fetch(`${app.base}/console/nothing-here`);
  assertEquals(missing.status, 404);
  await missing.body?.cancel();
  const method = await fetch(`${app.base}/console/login`);
  assertEquals(method.status, 405);
  assertEquals(method.headers.get("allow"), "POST");
  await method.body?.cancel();
});

Deno.test("console writes refuse other origins and non-JSON bodies; the cookie is HttpOnly, strict, and Secure behind an https proxy", async () => {
  await using app = await startConsoleServer({ TRUST_PROXY: "true" });
  const crossSite = await fetch(`${app.base}/console/login`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      origin: "https://evil.example",
    },
    body: JSON.stringify({ token: ADMIN_TOKEN }),
  });
  assertEquals(crossSite.status, 403);
  assertEquals((await json(crossSite)).error, {
    status: 403,
    code: "cross_origin",
    message: 'Origin "https://evil.example" may not act on this console',
  });
  const form = await fetch(`${app.base}/console/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `token=${ADMIN_TOKEN}`,
  });
  assertEquals(form.status, 415);
  await form.body?.cancel();
  const broken = await fetch(`${app.base}/console/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{nope",
  });
  assertEquals(broken.status, 400);
  await broken.body?.cancel();

  const plain = await fetch(`${app.base}/console/login`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: app.base },
    body: JSON.stringify({ token: ADMIN_TOKEN }),
  });
  await plain.body?.cancel();
  const cookie = plain.headers.get("set-cookie")!;
  assertMatch(
    cookie,
    /^exovoice_console=[\w-]{40,}; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
  );
  assert(!cookie.includes(ADMIN_TOKEN));
  const proxied = await fetch(`${app.base}/console/login`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-forwarded-proto": "https",
    },
    body: JSON.stringify({ token: ADMIN_TOKEN }),
  });
  await proxied.body?.cancel();
  assertMatch(proxied.headers.get("set-cookie")!, /; Secure$/);

  const session = cookie.split(";")[0];
  const overview = await fetch(`${app.base}/console/api/overview`, {
    headers: { cookie: session },
  });
  assertEquals(overview.status, 200);
  assertEquals((await json(overview)).liveCalls, 0);
  const logout = await fetch(`${app.base}/console/logout`, {
    method: "POST",
    headers: { "content-type": "application/json", cookie: session },
    body: "{}",
  });
  await logout.body?.cancel();
  assertMatch(logout.headers.get("set-cookie")!, /Max-Age=0/);
  const after = await fetch(`${app.base}/console/api/overview`, {
    headers: { cookie: session },
  });
  assertEquals(after.status, 401);
  await after.body?.cancel();
});

Deno.test("a softphone token opens the voicebot socket once without Exotel's credentials; a used or made-up one gets 401", async () => {
  await using app = await startConsoleServer();
  const cookie = await app.login();
  const mint = (body: unknown) =>
    fetch(`${app.base}/console/api/softphone`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie },
      body: JSON.stringify(body),
    });
  const badBot = await mint({ bot: "nobody", sampleRate: 8000 });
  assertEquals(badBot.status, 400);
  assertEquals(
    ((await json(badBot)).error as { message: string }).message,
    'Invalid bot "nobody": expected one of echo',
  );
  const badRate = await mint({ bot: "echo", sampleRate: 11025 });
  assertEquals(badRate.status, 400);
  await badRate.body?.cancel();
  const altered = await json(await mint({ bot: "echo", sampleRate: 8000 }));
  const forged = await fetch(
    `${app.base}${
      String(altered.path).replace("sample-rate=8000", "sample-rate=16000")
    }`,
    { headers: { upgrade: "websocket" } },
  );
  assertEquals(forged.status, 401, "the token is for the URL it came with");
  await forged.body?.cancel();
  const grant = await json(await mint({ bot: "echo", sampleRate: 16000 }));
  assertMatch(
    String(grant.path),
    /^\/voicebot\/ws\?call_id=softphone-.*&sample-rate=16000&console_token=/,
  );

  const url = `${app.base.replace("http", "ws")}${grant.path}`;
  const pcm = (await fixturePcm("hello_16000.wav")).subarray(0, 16_000);
  const report = await simulateCall({
    url,
    pcm,
    sampleRate: 16000,
    realtime: false,
    waitForReplyMs: 200,
  });
  assert(report.connected, report.error);
  await until(() => app.server.registry.size === 0, "the call to end");

  const again = await fetch(url.replace("ws", "http"), {
    headers: { upgrade: "websocket" },
  });
  assertEquals(again.status, 401);
  assertEquals(
    ((await json(again)).error as { message: string }).message,
    "Invalid, used or expired console token: start the call again from the console",
  );
  const exotelStill = await fetch(`${app.base}/voicebot/ws`, {
    headers: { upgrade: "websocket" },
  });
  assertEquals(exotelStill.status, 401, "Exotel's own check is unchanged");
  await exotelStill.body?.cancel();
});

Deno.test("recordings are served with range requests; the live stream starts with a snapshot and a drain ends it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "exovoice_console_rec_" });
  try {
    await using app = await startConsoleServer({ RECORDINGS_DIR: dir });
    const cookie = await app.login();
    const report = await simulateCall({
      url: `${app.base.replace("http", "ws")}/voicebot/ws`,
      headers: { authorization: "Bearer exotel-secret" },
      pcm: await fixturePcm("hello_8000.wav"),
      sampleRate: 8000,
      realtime: false,
      callSid: "CA-recorded",
      waitForReplyMs: 200,
    });
    assert(report.connected, report.error);
    let calls: { id: string; recording?: { bytes: number } }[] = [];
    const deadline = Date.now() + 5000;
    while (calls.length === 0 && Date.now() < deadline) {
      const list = await fetch(`${app.base}/console/api/calls?outcome=stop`, {
        headers: { cookie },
      });
      calls = (await json(list)).calls as typeof calls;
      if (calls.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    const [call] = calls;
    assertExists(call.recording);
    const size = call.recording.bytes;
    const recording = `${app.base}/console/api/calls/${call.id}/recording`;
    const whole = await fetch(recording, { headers: { cookie } });
    assertEquals(whole.status, 200);
    assertEquals(whole.headers.get("accept-ranges"), "bytes");
    assertEquals((await whole.arrayBuffer()).byteLength, size);
    const part = await fetch(recording, {
      headers: { cookie, range: "bytes=0-43" },
    });
    assertEquals(part.status, 206);
    assertEquals(part.headers.get("content-range"), `bytes 0-43/${size}`);
    const header = new Uint8Array(await part.arrayBuffer());
    assertEquals(new TextDecoder().decode(header.subarray(0, 4)), "RIFF");
    assertEquals(header[22], 2, "two channels: caller and bot");
    const past = await fetch(recording, {
      headers: { cookie, range: `bytes=${size}-` },
    });
    assertEquals(past.status, 416);
    assertEquals(past.headers.get("content-range"), `bytes */${size}`);
    await past.body?.cancel();
    const badOutcome = await fetch(
      `${app.base}/console/api/calls?outcome=DROP%20TABLE`,
      {
        headers: { cookie },
      },
    );
    assertEquals(badOutcome.status, 400);
    await badOutcome.body?.cancel();

    const live = await fetch(`${app.base}/console/api/live`, {
      headers: { cookie },
    });
    assertEquals(
      live.headers.get("content-type"),
      "text/event-stream; charset=utf-8",
    );
    const reader = live.body!.pipeThrough(new TextDecoderStream()).getReader();
    const first = await reader.read();
    assertEquals(
      first.value,
      'event: snapshot\ndata: {"type":"snapshot","calls":[]}\n\n',
    );
    await app.server.drain(1000);
    assertEquals((await reader.read()).done, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
