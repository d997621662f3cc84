/**
 * The echo guard on the `bot_echo_*` fixtures: the bot's voice at -20 dB,
 * 150 ms late, band-limited, is explained by what the bot sent; a caller
 * talking over it is not.
 */
import { assertEquals, assertGreater } from "@std/assert";
import { EchoGuard } from "../src/audio/echo_guard.ts";
import { energyDetector } from "../src/audio/speech_detector.ts";
import { fixturePcm } from "./fakes/agent_call.ts";

const RATES = [8000, 16000] as const;

/** `a` with `b` mixed in from `atMs`, clipped to 16 bits. */
function mix(a: Uint8Array, b: Uint8Array, atMs: number, rate: number) {
  const out = a.slice();
  const view = new DataView(out.buffer);
  const other = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const offset = Math.round(rate * atMs / 1000) * 2;
  for (let i = 0; i + 1 < b.length && offset + i + 1 < out.length; i += 2) {
    const sum = view.getInt16(offset + i, true) + other.getInt16(i, true);
    view.setInt16(offset + i, Math.max(-32768, Math.min(32767, sum)), true);
  }
  return out;
}

/** `pcm` scaled by `db`. */
function gain(pcm: Uint8Array, db: number): Uint8Array {
  const out = pcm.slice();
  const view = new DataView(out.buffer);
  const factor = 10 ** (db / 20);
  for (let i = 0; i + 1 < out.length; i += 2) {
    view.setInt16(i, Math.round(view.getInt16(i, true) * factor), true);
  }
  return out;
}

/** Level of a 20 ms frame, in dB on the 16-bit scale. */
function frameDb(pcm: Uint8Array, at: number, bytes: number): number {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  let sum = 0;
  const end = Math.min(pcm.length, at + bytes);
  for (let i = at; i + 1 < end; i += 2) sum += view.getInt16(i, true) ** 2;
  return 10 * Math.log10(sum / ((end - at) / 2) + 1);
}

/**
 * Plays `reference` as the bot (sent and played in real time) while the
 * caller's line carries `caller`, 20 ms at a time; returns, of the caller's
 * audible 20 ms frames, how many the guard took for echo.
 */
function judge(
  reference: Uint8Array,
  caller: Uint8Array,
  rate: number,
  options: { lateMs?: number } = {},
): { audible: number; echo: number } {
  const guard = new EchoGuard(rate);
  const frame = rate / 50 * 2;
  let audible = 0;
  let echo = 0;
  for (let at = 0; at < caller.length; at += frame) {
    const ms = at / 2 / rate * 1000;
    if (at < reference.length) {
      guard.sent(reference.subarray(at, at + frame), {
        sentAt: ms,
        startsAt: ms,
      });
    }
    guard.heard(
      caller.subarray(at, at + frame),
      ms + 20 + (options.lateMs ?? 0),
    );
    if (frameDb(caller, at, frame) > 40) {
      audible++;
      if (guard.isEcho(ms, 20)) echo++;
    }
  }
  return { audible, echo };
}

for (const rate of RATES) {
  Deno.test(`echo guard (${rate} Hz): the bot's echo at -20 dB, 150 ms late, is all explained`, async () => {
    const reference = await fixturePcm(`noise/bot_echo_reference_${rate}.wav`);
    const echo = await fixturePcm(`noise/bot_echo_over_silence_${rate}.wav`);
    const result = judge(reference, echo, rate);
    assertGreater(result.audible, 50, "the echo is audible");
    assertEquals(result.echo, result.audible);
  });

  Deno.test(`echo guard (${rate} Hz): a caller talking over the echo is not explained by it`, async () => {
    const reference = await fixturePcm(`noise/bot_echo_reference_${rate}.wav`);
    const echo = await fixturePcm(`noise/bot_echo_over_silence_${rate}.wav`);
    const speech = await fixturePcm(`interrupt_${rate}.wav`);
    const caller = mix(echo, speech, 500, rate);
    const alone = judge(reference, echo, rate);
    const over = judge(reference, caller, rate);
    const callerFrames = over.audible - alone.audible;
    assertGreater(callerFrames, 50);
    // Most of what the caller says stands clear of the echo.
    assertGreater(over.audible - over.echo, callerFrames * 0.6);
  });
}

Deno.test("echo guard: the contract's edges, 100 and 300 ms late at 15 dB down, are explained", async () => {
  const reference = await fixturePcm("noise/bot_echo_reference_8000.wav");
  for (const delayMs of [100, 300]) {
    const echo = mix(
      new Uint8Array(reference.length),
      gain(reference, -15),
      delayMs,
      8000,
    );
    const result = judge(reference, echo, 8000);
    assertGreater(result.audible, 50);
    assertEquals(result.echo, result.audible, `${delayMs} ms`);
  }
});

Deno.test("echo guard: with nothing sent, or sent long before, nothing is echo", async () => {
  const reference = await fixturePcm("noise/bot_echo_reference_8000.wav");
  const echo = await fixturePcm("noise/bot_echo_over_silence_8000.wav");
  assertEquals(judge(new Uint8Array(0), echo, 8000).echo, 0);
  // The same audio a second after the longest round trip is not its echo.
  assertEquals(judge(reference, echo, 8000, { lateMs: 1500 }).echo, 0);
});

Deno.test("echo guard keeps the echo out of the detector's foreground voice", async () => {
  const reference = await fixturePcm("noise/bot_echo_reference_8000.wav");
  const echo = await fixturePcm("noise/bot_echo_over_silence_8000.wav");
  const frame = 320;
  let peakWith = 0;
  let peakWithout = 0;
  const guard = new EchoGuard(8000);
  const guarded = energyDetector(8000, {
    isEcho: (atMs, durationMs) => guard.isEcho(atMs, durationMs),
  });
  const plain = energyDetector(8000);
  for (let at = 0; at < echo.length; at += frame) {
    const ms = at / 16;
    guard.sent(reference.subarray(at, at + frame), {
      sentAt: ms,
      startsAt: ms,
    });
    guard.heard(echo.subarray(at, at + frame), ms + 20);
    guarded.push(echo.subarray(at, at + frame));
    plain.push(echo.subarray(at, at + frame));
    peakWith = Math.max(peakWith, guarded.foregroundMs);
    peakWithout = Math.max(peakWithout, plain.foregroundMs);
  }
  await guarded.close();
  await plain.close();
  assertGreater(
    peakWithout,
    400,
    "without the guard the echo is voice enough to interrupt",
  );
  assertEquals(peakWith, 0);
  assertGreater(guard.echoMs, 1000);
});
