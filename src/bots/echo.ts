/**
 * The echo bot: plays the caller's audio back to them, byte for byte, through
 * the player. The default bot, needing no keys; a quick way to check a line.
 *
 * @module
 */

import { PcmPipe } from "../audio/pcm_pipe.ts";
import { bytesForMs } from "../audio/pcm.ts";
import type { Bot, BotFactory } from "./bot.ts";

/** How far the echo may fall behind before old audio is dropped. */
const MAX_BACKLOG_MS = 2000;

/** Creates an echo bot for a call. */
export const createEchoBot: BotFactory = (info, output): Bot => {
  const pipe = new PcmPipe({
    maxBytes: bytesForMs(MAX_BACKLOG_MS, info.sampleRate),
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
