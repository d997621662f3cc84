/**
 * What the agent tests run a bot against: a {@linkcode MemoryOutput} that
 * plays audio the way the player does (one utterance after another, a mark
 * per utterance, `clear` dropping the rest) but on a playback head the test
 * moves, and {@linkcode startAgentFakes}, the fake vendor servers with the
 * real adapters pointed at them.
 *
 * @module
 */

import { durationMs } from "../../src/audio/pcm.ts";
import { decodeWav } from "../../src/audio/wav.ts";
import type {
  Audio,
  Bot,
  CallInfo,
  CallOutput,
  Playback,
  PlayOptions,
} from "../../src/bots/bot.ts";
import {
  type AgentConfig,
  loadAgentConfig,
} from "../../src/bots/agent/config.ts";
import {
  type AgentProviders,
  createProviders,
} from "../../src/bots/agent/providers.ts";
import type { SampleRate } from "../../src/audio/pcm.ts";
import {
  type FakeReplySource,
  startFakeOpenAiServer,
} from "./openai_server.ts";
import type { FakeOpenAiServer } from "./openai_server.ts";
import {
  type FakeSttScript,
  FakeSttServer,
  type SttVendor,
} from "./stt_servers.ts";
import { FakeTtsServer, type TtsVendor } from "./tts_servers.ts";
import { concat } from "@std/bytes";
import {
  Listener,
  type ListenerOptions,
} from "../../src/bots/agent/listener.ts";
import { systemClock } from "../../src/call/clock.ts";
import type {
  SpeechEvent,
  SpeechToText,
} from "../../src/providers/stt/speech_to_text.ts";

/** One utterance given to a {@linkcode MemoryOutput}. */
export interface MemoryUtterance {
  /** Its mark. */
  mark: string;
  /** The audio read so far. */
  pcm: Uint8Array;
  /** Whether all of its audio has been read. */
  complete: boolean;
  /** Bytes the playback head has played. */
  playedBytes: number;
  /** How it ended, once it has. */
  playback?: Playback;
}

interface Pending extends MemoryUtterance {
  audio: Audio;
  resolve(playback: Playback): void;
  source?: AsyncIterator<Uint8Array>;
}

/**
 * An in-memory {@linkcode CallOutput}. In `auto` mode every utterance is
 * played (and its mark echoed) as soon as all its audio is read; otherwise
 * nothing plays until {@linkcode MemoryOutput.advance} moves the head.
 */
export class MemoryOutput implements CallOutput {
  /** Every utterance queued, in order. */
  readonly utterances: MemoryUtterance[] = [];
  /** `clear` calls made while something was queued or playing (what the player sends). */
  clears = 0;
  /** `pause` calls. */
  pauses = 0;
  /** `resume` calls. */
  resumes = 0;
  /** Bytes reported to `dropped`. */
  droppedBytes = 0;
  /** Reasons given to `hangup`, in order. */
  readonly hangups: string[] = [];
  /** Called with each mark Exotel would echo: wire it to `bot.marked`. */
  onMark: (name: string) => void = () => {};
  /** Called on hangup: wire it to `bot.stop`, as the call does. */
  onHangup: () => void = () => {};
  #sampleRate: number;
  #auto: boolean;
  #queue: Pending[] = [];
  #pumping = false;
  #stopped = false;
  #paused = false;

  /** Creates the output for a call at `sampleRate`. */
  constructor(sampleRate: number, options: { auto?: boolean } = {}) {
    this.#sampleRate = sampleRate;
    this.#auto = options.auto ?? true;
  }

  /** Marks of the utterances played to their end, in order. */
  get played(): string[] {
    return this.utterances.filter((u) => u.playback?.status === "played")
      .map((u) => u.mark);
  }

  /** Queues `audio`, like the player. */
  play(audio: Audio, options: PlayOptions = {}): Promise<Playback> {
    const mark = options.mark ?? `utt-${this.utterances.length + 1}`;
    if (this.#stopped) {
      return Promise.resolve({
        status: "stopped",
        mark,
        sentBytes: 0,
        heardMs: 0,
      });
    }
    return new Promise((resolve) => {
      const pending: Pending = {
        mark,
        pcm: new Uint8Array(0),
        complete: false,
        playedBytes: 0,
        audio,
        resolve,
      };
      this.utterances.push(pending);
      this.#queue.push(pending);
      if (!this.#pumping) this.#pump();
    });
  }

  /** Drops everything queued; counts a clear when something was. */
  clear(): void {
    this.#paused = false;
    if (this.#queue.length === 0) return;
    this.clears++;
    this.#drop("cleared");
  }

  /** Whether the output is paused. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Holds the playback head where it is until {@linkcode MemoryOutput.resume} or a clear. */
  pause(): void {
    this.pauses++;
    this.#paused = true;
  }

  /** Lets the head move again; in `auto` mode plays what was read meanwhile. */
  resume(): void {
    this.resumes++;
    this.#paused = false;
    if (this.#auto) this.advance(Number.MAX_SAFE_INTEGER / 1e6);
  }

  /** Records the hangup and ends the call. */
  hangup(reason = "hangup"): void {
    this.hangups.push(reason);
    this.stop();
    this.onHangup();
  }

  /** Counts bot audio dropped unplayed. */
  dropped(bytes: number): void {
    this.droppedBytes += bytes;
  }

  /** The call ended: drops everything. */
  stop(): void {
    this.#stopped = true;
    this.#drop("stopped");
  }

  /** Plays `ms` more of the queued audio, echoing the marks it reaches. */
  advance(ms: number): void {
    if (this.#paused) return;
    let bytes = Math.round(ms * this.#sampleRate / 1000) * 2;
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      const take = Math.min(bytes, head.pcm.length - head.playedBytes);
      head.playedBytes += take;
      bytes -= take;
      if (!head.complete || head.playedBytes < head.pcm.length) return;
      this.#queue.shift();
      this.#finish(head, "played");
    }
  }

  #finish(utterance: Pending, status: Playback["status"]): void {
    const playback: Playback = {
      status,
      mark: utterance.mark,
      sentBytes: utterance.pcm.length,
      heardMs: durationMs(utterance.playedBytes, this.#sampleRate),
    };
    utterance.playback = playback;
    if (status === "played") this.onMark(utterance.mark);
    utterance.resolve(playback);
  }

  #drop(status: "cleared" | "stopped"): void {
    const dropped = this.#queue.splice(0);
    for (const utterance of dropped) {
      utterance.source?.return?.();
      this.#finish(utterance, status);
    }
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    while (this.#queue.length > 0) {
      const utterance = this.#queue.find((u) => !u.complete);
      if (!utterance) break;
      await this.#read(utterance);
      if (this.#auto) this.advance(Number.MAX_SAFE_INTEGER / 1e6);
    }
    this.#pumping = false;
  }

  async #read(utterance: Pending): Promise<void> {
    const { audio } = utterance;
    if (audio instanceof Uint8Array) {
      utterance.pcm = audio;
    } else {
      const source = audio[Symbol.asyncIterator]();
      utterance.source = source;
      while (true) {
        const next = await source.next();
        if (next.done || utterance.playback) break;
        utterance.pcm = concat([utterance.pcm, next.value]);
      }
    }
    utterance.complete = true;
  }
}

/** Call info for a test call. */
export function callInfo(sampleRate: SampleRate, callId = "CA-test"): CallInfo {
  return {
    callId,
    streamSid: `MZ-${callId}`,
    accountSid: "AC-test",
    from: "+919876543210",
    to: "08047491899",
    customParameters: {},
    sampleRate,
  };
}

/** A bot wired to a {@linkcode MemoryOutput} the way a call wires it to the player. */
export interface MemoryCall<B extends Bot> extends AsyncDisposable {
  /** The bot. */
  bot: B;
  /** Where it plays: marks echo to `bot.marked`, a hang-up stops the bot. */
  output: MemoryOutput;
  /** The call it was created for. */
  info: CallInfo;
  /** What `bot.start()` returned, settled. */
  started: Promise<void>;
  /** Stops the output, then the bot. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode startMemoryCall}. */
export interface MemoryCallOptions {
  /** The call; `callInfo(rate)` by default. */
  info?: CallInfo;
  /** The call's sample rate when `info` is not given; 8000 by default. */
  rate?: SampleRate;
  /** {@linkcode MemoryOutput}'s `auto`; true by default. */
  auto?: boolean;
}

/**
 * Creates a bot from `createBot` on a {@linkcode MemoryOutput} and starts
 * it. Disposing it stops the output, then the bot.
 *
 * @example The echo bot plays back what it hears
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createEchoBot } from "../../src/bots/echo.ts";
 *
 * await using call = startMemoryCall(createEchoBot);
 * call.bot.audio(new Uint8Array(640).fill(7));
 * await until(() => call.output.utterances[0]?.pcm.length === 640, "the echo");
 * assertEquals(call.output.utterances[0].pcm, new Uint8Array(640).fill(7));
 * ```
 */
export function startMemoryCall<B extends Bot>(
  createBot: (info: CallInfo, output: CallOutput) => B,
  options: MemoryCallOptions = {},
): MemoryCall<B> {
  const info = options.info ?? callInfo(options.rate ?? 8000);
  const output = new MemoryOutput(info.sampleRate, { auto: options.auto });
  const bot = createBot(info, output);
  output.onMark = (name) => bot.marked?.(name);
  output.onHangup = () => void bot.stop();
  const started = Promise.resolve(bot.start?.());
  return {
    bot,
    output,
    info,
    started,
    async [Symbol.asyncDispose]() {
      output.stop();
      await bot.stop();
    },
  };
}

/** A fixture's PCM. */
export async function fixturePcm(name: string): Promise<Uint8Array> {
  const url = new URL(`../fixtures/audio/${name}`, import.meta.url);
  return decodeWav(await Deno.readFile(url)).pcm;
}

/** The key every fake vendor accepts. */
export const FAKE_KEY = "fake-vendor-key";

/** Options of {@linkcode startAgentFakes}. */
export interface AgentFakesOptions {
  /** The speech-to-text vendor faked; Deepgram by default. */
  stt?: SttVendor;
  /** The text-to-speech vendor faked; Deepgram by default. */
  tts?: TtsVendor;
  /** What the caller says, per turn. */
  script?: FakeSttScript;
  /** The model's replies, in order. */
  replies?: FakeReplySource[];
  /** More environment for the agent's configuration. */
  env?: Record<string, string>;
  /** The audio the fake voice speaks for a text (see `FakeTtsServerOptions.speech`). */
  speech?: (text: string, sampleRate: number) => Uint8Array;
}

/** The fake vendors and the agent configuration pointing at them. */
export interface AgentFakes extends AsyncDisposable {
  /** Fake speech-to-text. */
  stt: FakeSttServer;
  /** Fake language model. */
  llm: FakeOpenAiServer;
  /** Fake text-to-speech. */
  tts: FakeTtsServer;
  /** The configuration, as `loadAgentConfig` read it. */
  config: AgentConfig;
  /** Real adapters pointed at the fakes. */
  providers: AgentProviders;
}

/**
 * Starts fake speech-to-text, language-model and text-to-speech servers and
 * loads an agent configuration whose base URLs point at them.
 */
export async function startAgentFakes(
  options: AgentFakesOptions = {},
): Promise<AgentFakes> {
  const sttVendor = options.stt ?? "deepgram";
  const ttsVendor = options.tts ?? "deepgram";
  // One key for every vendor, as one Deepgram key serves both stages.
  const stt = await FakeSttServer.start(sttVendor, {
    apiKey: FAKE_KEY,
    script: options.script,
  });
  const tts = await FakeTtsServer.start(ttsVendor, {
    apiKey: FAKE_KEY,
    speech: options.speech,
  });
  const llm = startFakeOpenAiServer({
    apiKey: "fake-llm-key",
    replies: options.replies,
  });
  const config = loadAgentConfig({
    [`${sttVendor.toUpperCase()}_API_KEY`]: FAKE_KEY,
    [`${ttsVendor.toUpperCase()}_API_KEY`]: FAKE_KEY,
    STT_PROVIDER: sttVendor,
    STT_BASE_URL: stt.baseUrl,
    TTS_PROVIDER: ttsVendor,
    TTS_BASE_URL: tts.baseUrl,
    LLM_BASE_URL: llm.baseUrl,
    LLM_API_KEY: "fake-llm-key",
    LLM_MODEL: "fake-model",
    STT_TIMEOUT_MS: "2000",
    LLM_TIMEOUT_MS: "2000",
    TTS_TIMEOUT_MS: "2000",
    ...options.env,
  });
  const providers = createProviders(config);
  return {
    stt,
    llm,
    tts,
    config,
    providers,
    async [Symbol.asyncDispose]() {
      await Promise.all([stt.close(), llm.close(), tts.close()]);
    },
  };
}

/** Waits until `predicate` holds, checking every 5 ms; fails after `ms`. */
export async function until(
  predicate: () => boolean,
  what: string,
  ms = 5000,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Feeds `pcm` to `push` in 20 ms frames, yielding to the event loop between frames. */
export async function feed(
  push: (pcm: Uint8Array) => void,
  pcm: Uint8Array,
  sampleRate: number,
): Promise<void> {
  const frame = sampleRate / 50 * 2;
  for (let at = 0; at < pcm.length; at += frame) {
    push(pcm.subarray(at, at + frame));
    if ((at / frame) % 10 === 9) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}

/**
 * A {@linkcode Listener} on `stt` for a call at 8 kHz in `en-IN` on the
 * system clock, its events collected; a failure throws unless `options`
 * give an `onError`. Not started.
 */
export function listenerOn(
  stt: SpeechToText,
  options: Partial<ListenerOptions> = {},
): { listener: Listener; events: SpeechEvent[] } {
  const events: SpeechEvent[] = [];
  const listener = new Listener({
    stt,
    callRate: 8000,
    sttRate: 8000,
    language: "en-IN",
    clock: systemClock,
    onEvent: (event) => events.push(event),
    onError: (error) => {
      throw error;
    },
    ...options,
  });
  return { listener, events };
}
