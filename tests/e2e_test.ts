/**
 * End to end: the real server on a random port, the simulator (a fake Exotel
 * speaking the real protocol over a real WebSocket) playing fixture speech.
 */
import { assert, assertEquals } from "@std/assert";
import type { SampleRate } from "../src/audio/pcm.ts";
import { decodeWav } from "../src/audio/wav.ts";
import { serve, until } from "./fakes/sockets.ts";
import { simulateCall } from "../tools/simulator.ts";

async function fixture(name: string) {
  return decodeWav(
    await Deno.readFile(new URL(`./fixtures/audio/${name}`, import.meta.url)),
  );
}

Deno.test("calls at 8, 16 and 24 kHz at once get their own speech echoed byte for byte", async () => {
  await using server = await serve();
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws`;
  const wavs = await Promise.all(
    ["hello_8000.wav", "question_16000.wav", "hello_24000.wav"].map(fixture),
  );
  const reports = await Promise.all(wavs.map((wav, i) =>
    simulateCall({
      url,
      pcm: wav.pcm,
      sampleRate: wav.sampleRate as SampleRate,
      callSid: `CA${i}`,
      waitForReplyMs: 300,
      maxWaitMs: 5000,
      dtmf: [{ atMs: 500, digit: "5" }],
    })
  ));
  for (const [i, report] of reports.entries()) {
    const { pcm, sampleRate } = wavs[i];
    assert(report.connected, `${sampleRate} Hz: ${report.error}`);
    assertEquals(report.badChunks, [], `${sampleRate} Hz`);
    assertEquals(report.badFrames, [], `${sampleRate} Hz`);
    assert(
      report.received.pcmBytes >= pcm.length,
      `${sampleRate} Hz: got ${report.received.pcmBytes} of ${pcm.length}`,
    );
    assertEquals(
      report.receivedPcm.subarray(0, pcm.length),
      pcm,
      `${sampleRate} Hz echo differs`,
    );
    assertEquals(report.clearsReceived, 0);
    // The echoed silence sent while waiting is not taken for more reply.
    assertEquals(report.endReason, "completed", `${sampleRate} Hz`);
  }
  await until(() => server.registry.size === 0);
});

Deno.test("the simulator gets a 401 from a server that wants a token, and a call with it", async () => {
  await using server = await serve({ EXOTEL_WS_TOKEN: "tok" });
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws`;
  const { pcm } = await fixture("tone_440hz_1s_8000.wav");
  const refused = await simulateCall({
    url,
    pcm,
    sampleRate: 8000,
    maxWaitMs: 500,
  });
  assertEquals(refused.connected, false);
  assertEquals(refused.httpStatus, 401);
  const accepted = await simulateCall({
    url,
    pcm,
    sampleRate: 8000,
    headers: { authorization: "Bearer tok" },
    realtime: false,
    waitForReplyMs: 300,
    maxWaitMs: 1500,
  });
  assert(accepted.connected);
  assertEquals(accepted.receivedPcm.subarray(0, 3200), pcm.subarray(0, 3200));
  await until(() => server.registry.size === 0);
});
