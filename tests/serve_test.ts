import { assert, assertEquals, assertRejects } from "@std/assert";
import { type Bot, type BotFactory, ConfigError, serve } from "../mod.ts";
import { simulateCall } from "../tools/simulator.ts";
import { FakeClock } from "./fakes/clock.ts";

const QUIET = { KV_PATH: ":memory:", LOG_LEVEL: "error" };

/** A bot that plays 300 ms of tone at start and hangs up when `#` is pressed. */
const toneBot: BotFactory = (info, output): Bot => {
  const tone = new Int16Array(info.sampleRate * 3 / 10).map((_, i) =>
    Math.round(5000 * Math.sin(2 * Math.PI * 600 * i / info.sampleRate))
  );
  return {
    start() {
      void output.play(new Uint8Array(tone.buffer));
    },
    audio() {},
    dtmf(digit) {
      if (digit === "#") output.hangup("caller_pressed_hash");
    },
    stop() {},
  };
};

Deno.test("serve answers calls with a bot given as a value", async () => {
  await using server = await serve({
    bot: toneBot,
    botName: "tone",
    readEnv: false,
    env: QUIET,
    hostname: "127.0.0.1",
    port: 0,
    logging: false,
  });
  const health = await (await fetch(`${server.url}/health`)).json();
  assertEquals(health.bot, "tone");
  const report = await simulateCall({
    url: `${server.url.replace("http", "ws")}/voicebot/ws`,
    pcm: new Uint8Array(1600),
    sampleRate: 8000,
    dtmf: [{ atMs: 600, digit: "#" }],
    realtime: false,
  });
  assertEquals(report.endReason, "closed_by_bot");
  assertEquals(report.badChunks, []);
  // 300 ms at 8 kHz, padded to a multiple of 320 bytes.
  assertEquals(report.received.pcmBytes, 4800);
});

Deno.test("serve rejects a bad setting, naming the variable", async () => {
  const error = await assertRejects(
    () =>
      serve({
        readEnv: false,
        env: { ...QUIET, CHUNK_BYTES: "321" },
        logging: false,
      }),
    ConfigError,
  );
  assertEquals(error.variable, "CHUNK_BYTES");
  assert(error.message.includes('"321"'), error.message);
});

Deno.test("serve's settings override the environment's, which apply under them", async () => {
  Deno.env.set("ADMIN_TOKEN", "from-environment");
  Deno.env.set("MAX_SESSIONS", "7");
  try {
    await using server = await serve({
      env: { ...QUIET, ADMIN_TOKEN: "from-options" },
      hostname: "127.0.0.1",
      port: 0,
      logging: false,
    });
    assertEquals(server.config.maxSessions, 7);
    const metrics = (token: string) =>
      fetch(`${server.url}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      }).then(async (response) => {
        await response.body?.cancel();
        return response.status;
      });
    assertEquals(await metrics("from-environment"), 401);
    assertEquals(await metrics("from-options"), 200);
  } finally {
    Deno.env.delete("ADMIN_TOKEN");
    Deno.env.delete("MAX_SESSIONS");
  }
});

Deno.test("serve without the environment ignores it", async () => {
  Deno.env.set("MAX_SESSIONS", "7");
  try {
    await using server = await serve({
      readEnv: false,
      env: QUIET,
      hostname: "127.0.0.1",
      port: 0,
      logging: false,
    });
    assertEquals(server.config.maxSessions, 3000);
  } finally {
    Deno.env.delete("MAX_SESSIONS");
  }
});

Deno.test("aborting serve's signal drains and stops the server", async () => {
  const controller = new AbortController();
  const server = await serve({
    readEnv: false,
    env: QUIET,
    hostname: "127.0.0.1",
    port: 0,
    logging: false,
    signal: controller.signal,
  });
  controller.abort();
  await server.finished;
  await assertRejects(() => fetch(`${server.url}/health`), TypeError);
  // Shutting down again is harmless.
  await server.shutdown();
});

Deno.test("serve runs the whole server on the clock it is given", async () => {
  const clock = new FakeClock();
  await using server = await serve({
    readEnv: false,
    env: QUIET,
    hostname: "127.0.0.1",
    port: 0,
    logging: false,
    clock,
  });
  const uptime = async () =>
    (await (await fetch(`${server.url}/health`)).json()).uptimeS;
  assertEquals(await uptime(), 0);
  await clock.advance(90_000);
  assertEquals(await uptime(), 90);
});
