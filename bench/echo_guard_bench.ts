/**
 * Cost of the echo guard per 20 ms caller frame: while the bot speaks (its
 * audio can come back, so every block is judged) and while it is quiet
 * (nothing can come back: the frame is only counted).
 *
 * @module
 */
import { EchoGuard } from "../src/audio/echo_guard.ts";
import { decodeWav } from "../src/audio/wav.ts";

for (const rate of [8000, 16000]) {
  const read = (name: string) =>
    decodeWav(
      Deno.readFileSync(
        new URL(
          `../tests/fixtures/audio/noise/${name}_${rate}.wav`,
          import.meta.url,
        ),
      ),
    ).pcm;
  const reference = read("bot_echo_reference");
  const echo = read("bot_echo_over_silence");
  const frame = rate / 50 * 2;
  const frames = Math.floor(reference.length / frame);

  const speaking = new EchoGuard(rate);
  let clock = 0;
  let next = 0;
  Deno.bench({
    name: `${rate} Hz, bot speaking: send 20 ms, judge 20 ms`,
    group: `echo guard ${rate} Hz`,
    baseline: true,
    fn() {
      const at = next * frame;
      speaking.sent(reference.subarray(at, at + frame), {
        sentAt: clock,
        startsAt: clock,
      });
      clock += 20;
      speaking.heard(echo.subarray(at, at + frame), clock);
      speaking.isEcho(clock - 20, 20);
      next = (next + 1) % frames;
    },
  });

  const quiet = new EchoGuard(rate);
  let quietClock = 0;
  Deno.bench({
    name: `${rate} Hz, bot quiet: judge 20 ms`,
    group: `echo guard ${rate} Hz`,
    fn() {
      quietClock += 20;
      quiet.heard(echo.subarray(0, frame), quietClock);
    },
  });
}
