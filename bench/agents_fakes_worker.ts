/**
 * The fake vendors of `agents_bench.ts`, in a worker thread of their own so
 * that the callers' thread is not slowed by serving every call's
 * speech-to-text stream. Posts `{stt, tts, llm}` base URLs once listening;
 * on `"close"` stops them and posts `"closed"`.
 *
 * @module
 */

import { FakeOpenAiServer, textReply } from "../tests/fakes/openai_server.ts";
import { FakeSttServer } from "../tests/fakes/stt_servers.ts";
import { FakeTtsServer } from "../tests/fakes/tts_servers.ts";

/** What the bench sends the worker to start it. */
export interface FakesRequest {
  /** The API key every fake accepts. */
  key: string;
  /** Caller turns per connection. */
  turns: number;
  /** Where speech starts in each turn, ms. */
  speechStartMs: number;
  /** Audio per turn, ms. */
  turnMs: number;
  /** The model's answer, token by token. */
  answer: string[];
  /** The model's first event, ms. */
  firstTokenMs: number;
  /** The model's time between events, ms. */
  tokenGapMs: number;
  /** The voice's first byte, ms. */
  ttsFirstByteMs: number;
}

/** The fakes' base URLs. */
export interface FakesReady {
  /** Speech-to-text (Deepgram). */
  stt: string;
  /** Text-to-speech (Deepgram). */
  tts: string;
  /** The language model (OpenAI-compatible). */
  llm: string;
}

const scope = self as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
};

let stop: (() => Promise<void>) | undefined;

scope.onmessage = async (event: MessageEvent) => {
  if (event.data === "close") {
    await stop?.();
    scope.postMessage("closed");
    return;
  }
  const request = event.data as FakesRequest;
  const stt = await FakeSttServer.start("deepgram", {
    apiKey: request.key,
    script: {
      turns: Array.from({ length: request.turns }, () => ({
        text: "Hello, I would like to book a table for two.",
        speechStartMs: request.speechStartMs,
        turnMs: request.turnMs,
      })),
    },
  });
  const tts = await FakeTtsServer.start("deepgram", {
    apiKey: request.key,
    firstByteMs: request.ttsFirstByteMs,
  });
  const llm = new FakeOpenAiServer({
    apiKey: request.key,
    defaultReply: textReply(request.answer, {
      firstDelayMs: request.firstTokenMs,
      delayMs: request.tokenGapMs,
    }),
  });
  stop = async () => {
    await Promise.all([stt.close(), tts.close(), llm.close()]);
  };
  const ready: FakesReady = {
    stt: stt.baseUrl,
    tts: tts.baseUrl,
    llm: llm.baseUrl,
  };
  scope.postMessage(ready);
};
