/**
 * The echo bot: plays the caller's audio back to them, byte for byte, through
 * the player. The default bot, needing no keys; a quick way to check a line.
 *
 * @module
 */

import { PcmPipe } from "../audio/pcm_pipe.ts";
import { bytesForMs } from "../audio/pcm.ts";
import type { Bot, BotFactory } from "./bot.ts";

/**
 * How far the echo may fall behind real time before the oldest audio is
 * dropped: 30 s. Caller audio that arrives faster than it plays (a network
 * hiccup delivering seconds at once) is all kept and played back at real
 * time, up to this much; beyond it the oldest is dropped, counted in
 * `exovoice_playout_dropped_bytes_total` and logged once per call. Costs at
 * most 480 KB per call at 8 kHz, 960 KB at 16 kHz, 1.44 MB at 24 kHz, and
 * only while a backlog lasts.
 */
export const ECHO_MAX_BACKLOG_MS = 30_000;

/** Creates an echo bot for a call. */
export const createEchoBot: BotFactory = (info, output): Bot => {
  const pipe = new PcmPipe({
    maxBytes: bytesForMs(ECHO_MAX_BACKLOG_MS, info.sampleRate),
    onDrop: (bytes) => output.dropped(bytes),
  });
  return {
    start() {
      // One endless utterance, so the chunker sees one stream and the echo stays byte-identical.
      output.play(pipe, { mark: "echo", resumable: false });
    },
    audio(pcm) {
      pipe.push(pcm);
    },
    stop() {
      pipe.close();
    },
  };
};
