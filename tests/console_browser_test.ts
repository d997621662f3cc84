/**
 * The console in a real browser: Debian's Chromium, driven by playwright-core,
 * against the real server on 127.0.0.1 with the agent's vendors faked. One
 * browser for the whole file; each step is what an operator or a developer
 * trying their bot does. Chromium's fake microphone plays a fixture WAV.
 *
 * Set CONSOLE_SHOTS_DIR to also save screenshots of every page at laptop and
 * phone width.
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { chromium, type Page } from "playwright-core";
import { createAgentBotFactory } from "../src/bots/agent/mod.ts";
import { encodeWav } from "../src/audio/wav.ts";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/server.ts";
import { simulateCall } from "../tools/simulator.ts";
import { fixturePcm, startAgentFakes, until } from "./fakes/agent_call.ts";
import { textReply } from "./fakes/openai_server.ts";
import { HELLO_TRANSCRIPT } from "./fakes/stt_servers.ts";
import { concat } from "@std/bytes";

const CHROMIUM = "/usr/bin/chromium";
const ADMIN_TOKEN = "console-test-admin-token";
const REPLY = "Sure, tomorrow at ten works.";
/** Silence before the caller speaks, so the greeting is heard out first. */
const LEAD_MS = 1000;
const SHOTS_DIR = Deno.env.get("CONSOLE_SHOTS_DIR");
const LAPTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

/** What the test uses of an `<audio>` element (no DOM types here). */
interface AudioElement {
  play(): Promise<void>;
  pause(): void;
  duration: number;
  currentTime: number;
}

function silence(ms: number, rate: number): Uint8Array {
  return new Uint8Array(rate / 1000 * ms * 2);
}

async function shoot(page: Page, name: string): Promise<void> {
  if (!SHOTS_DIR) return;
  await Deno.mkdir(SHOTS_DIR, { recursive: true });
  for (const [width, size] of [["laptop", LAPTOP], ["phone", PHONE]] as const) {
    await page.setViewportSize(size);
    await page.screenshot({
      path: `${SHOTS_DIR}/${name}_${width}.png`,
      fullPage: true,
    });
  }
  await page.setViewportSize(LAPTOP);
}

Deno.test("the console in Chromium: log in, watch a call live, replay its record, call the echo bot and the agent from the softphone", async (t) => {
  const recordings = await Deno.makeTempDir({ prefix: "exovoice_console_" });
  // Chromium's fake microphone plays this file (in a loop): the caller's
  // hello after the same lead as the simulated call's.
  const micWav = `${recordings}/microphone.wav`;
  await Deno.writeFile(
    micWav,
    encodeWav({
      sampleRate: 16000,
      pcm: concat([
        silence(LEAD_MS, 16000),
        await fixturePcm("hello_16000.wav"),
      ]),
    }),
  );
  await using vendors = await startAgentFakes({
    stt: "deepgram",
    script: {
      turns: [{
        text: HELLO_TRANSCRIPT,
        speechStartMs: 520 + LEAD_MS,
        turnMs: 4600 + LEAD_MS,
      }],
    },
    replies: Array.from({ length: 6 }, () => textReply([REPLY])),
  });
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
  });
  const server = await startServer(
    loadConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      KV_PATH: ":memory:",
      BOT: "agent",
      ADMIN_TOKEN,
      RECORDINGS_DIR: recordings,
    }),
    { createBot: factory },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-default-apps",
      "--disable-sync",
      "--no-first-run",
      "--autoplay-policy=no-user-gesture-required",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${micWav}`,
    ],
  });
  try {
    const context = await browser.newContext({
      viewport: LAPTOP,
      permissions: ["microphone"],
    });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      // Failed requests (the wrong token's 401) are expected; script errors are not.
      if (
        message.type() === "error" &&
        !message.text().startsWith("Failed to load resource")
      ) pageErrors.push(message.text());
    });

    await t.step(
      "a wrong token is refused, the right one logs in with an HttpOnly strict cookie",
      async () => {
        await page.goto(`${base}/console`);
        await page.locator("input[name=token]").waitFor();
        assertEquals(
          await page.locator("nav").isVisible(),
          false,
          "nothing but the login before logging in",
        );
        await shoot(page, "login");
        await page.fill("input[name=token]", "wrong-token");
        await page.click("button[type=submit]");
        await page.getByText("Wrong admin token").waitFor();
        await page.fill("input[name=token]", ADMIN_TOKEN);
        await page.click("button[type=submit]");
        await page.locator("nav").waitFor({ state: "visible" });
        assert(!page.url().includes(ADMIN_TOKEN));
        const [cookie] = await context.cookies();
        assertEquals(cookie.httpOnly, true);
        assertEquals(cookie.sameSite, "Strict");
        assert(!cookie.value.includes(ADMIN_TOKEN));
        await page.getByText("calls in the last hour").waitFor();
      },
    );

    let simulated: ReturnType<typeof simulateCall> | undefined;
    await t.step(
      "a call placed by the simulator appears live with its transcript, then ends",
      async () => {
        await page.goto(`${base}/console#/live`);
        await page.getByText("No calls right now").waitFor();
        const hello = await fixturePcm("hello_8000.wav");
        simulated = simulateCall({
          url: `${base.replace("http", "ws")}/voicebot/ws`,
          pcm: concat([silence(LEAD_MS, 8000), hello]),
          sampleRate: 8000,
          from: "+919876543210",
          to: "08047491899",
          callSid: "CA-console-live",
          waitForReplyMs: 1500,
          maxWaitMs: 20_000,
        });
        const card = page.locator("[data-testid=live-call]", {
          hasText: "*********3210",
        });
        await card.waitFor({ timeout: 10_000 });
        // The greeting plays for a few seconds: the card says so meanwhile.
        await card.locator("[data-testid=activity]", { hasText: "speaking" })
          .waitFor({ timeout: 10_000 });
        await card.getByText(HELLO_TRANSCRIPT).waitFor({ timeout: 15_000 });
        await card.getByText(REPLY).waitFor({ timeout: 15_000 });
        await shoot(page, "live");
        const report = await simulated;
        assert(report.connected, report.error);
        await page.getByText("No calls right now").waitFor({ timeout: 10_000 });
      },
    );

    await t.step(
      "history finds the call by number; its page shows transcript, latency and plays the recording",
      async () => {
        await until(() => server.registry.size === 0, "the call to end");
        await page.goto(`${base}/console#/calls`);
        await page.fill("input[name=number]", "9876543210");
        const row = page.locator("[data-testid=history-row]", {
          hasText: "*********3210",
        });
        // The record is written in the background once the call ends:
        // search again until it is there, as an operator would.
        for (let tries = 0; tries < 40 && !(await row.count()); tries++) {
          await page.click("form.inline button[type=submit]");
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        await row.waitFor();
        await shoot(page, "history");
        await row.click();
        await page.getByText("Call CA-console-live").waitFor();
        await page.locator("[data-testid=transcript]").getByText(
          HELLO_TRANSCRIPT,
        )
          .waitFor();
        await page.locator("[data-testid=latency] .seg").first().waitFor();
        const played = await page.locator("audio[data-testid=recording]")
          .evaluate(async (element) => {
            const audio = element as unknown as AudioElement;
            await audio.play();
            await new Promise((resolve) => setTimeout(resolve, 700));
            audio.pause();
            return { duration: audio.duration, currentTime: audio.currentTime };
          });
        assertGreater(played.duration, 3);
        assertGreater(played.currentTime, 0);
        const src = await page.locator("audio").getAttribute("src");
        assert(src);
        const range = await page.evaluate(async (src) => {
          const response = await fetch(src, {
            headers: { range: "bytes=0-43" },
          });
          const header = new Uint8Array(await response.arrayBuffer());
          return {
            status: response.status,
            contentRange: response.headers.get("content-range"),
            channels: header[22],
          };
        }, src);
        assertEquals(range.status, 206);
        assert(range.contentRange?.startsWith("bytes 0-43/"));
        assertEquals(range.channels, 2);
        await shoot(page, "call");
      },
    );

    await t.step(
      "the softphone calls the echo bot: the microphone goes out, the echo comes back and is played",
      async () => {
        await page.goto(`${base}/console#/softphone`);
        await page.selectOption("select[name=bot]", "echo");
        await page.selectOption("select[name=rate]", "16000");
        await page.getByRole("button", { name: "Call", exact: true }).click();
        await page.getByText("In call with echo at 16 kHz").waitFor();
        await until(
          () =>
            [...server.registry.values()].some((session) =>
              session.bot === "echo" && session.playout.framesOut > 3 &&
              session.bytesIn > 32_000
            ),
          "the echo to come back",
          10_000,
        ).catch(async (error) => {
          const status = await page.locator("[data-testid=softphone-status]")
            .textContent();
          const sessions = [...server.registry.values()].map((session) => ({
            bytesIn: session.bytesIn,
            framesOut: session.playout.framesOut,
            state: session.state,
          }));
          throw new Error(
            `${error.message}: status "${status}", sessions ${
              JSON.stringify(sessions)
            }, page errors ${JSON.stringify(pageErrors)}`,
          );
        });
        const [session] = server.registry.values();
        assertEquals(session.sampleRate, 16000);
        assertEquals(session.from, "browser");
        await page.getByRole("button", { name: "Key 5" }).click();
        await until(() => session.dtmfDigits === "5", "the keypad digit");
        await page.getByRole("button", { name: "Hang up" }).click();
        await page.getByText("Call ended").waitFor();
        await until(() => server.registry.size === 0, "the echo call to end");
      },
    );

    await t.step(
      "the softphone calls the agent: the transcript appears beside it and played marks are echoed",
      async () => {
        await page.goto(`${base}/console#/softphone`);
        await page.selectOption("select[name=bot]", "agent");
        await page.selectOption("select[name=rate]", "8000");
        await page.getByRole("button", { name: "Call", exact: true }).click();
        await page.getByText("In call with agent at 8 kHz").waitFor();
        const side = page.locator(".softphone [data-testid=transcript]");
        await side.getByText("Hello! How can I help").waitFor({
          timeout: 15_000,
        });
        await side.getByText(HELLO_TRANSCRIPT).waitFor({ timeout: 15_000 });
        await side.getByText(REPLY).waitFor({ timeout: 15_000 });
        const [session] = server.registry.values();
        await until(
          () => session.playout.marksAcknowledged >= 1,
          "the browser to echo a mark once it played the greeting",
          10_000,
        );
        await shoot(page, "softphone");
        await page.getByRole("button", { name: "Hang up" }).click();
        await until(() => server.registry.size === 0, "the agent call to end");
      },
    );

    await t.step(
      "the overview counts the calls of the last hour with their latency",
      async () => {
        await page.goto(`${base}/console#/overview`);
        await page.getByText("calls in the last hour").waitFor();
        await page.locator(".pct .seg").first().waitFor({ timeout: 10_000 });
        await shoot(page, "overview");
      },
    );

    await t.step("logging out ends the session", async () => {
      await page.click("#logout");
      await page.getByText("Logged out.").waitFor();
      const status = await page.evaluate(async () =>
        (await fetch("/console/api/overview")).status
      );
      assertEquals(status, 401);
    });
    assertEquals(pageErrors, []);
    await context.close();
  } finally {
    await browser.close();
    await server.shutdown();
    await Deno.remove(recordings, { recursive: true });
  }
});
