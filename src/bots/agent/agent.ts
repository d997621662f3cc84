/**
 * The conversational agent bot: hears the caller through streaming
 * speech-to-text and a voice-activity detector, answers through a streaming
 * language model and text-to-speech, lets the caller interrupt, and keeps a
 * latency timeline per turn.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import {
  energyDetector,
  type SpeechDetector,
  type SpeechDetectorFactory,
} from "../../audio/speech_detector.ts";
import type { VadEvent } from "../../audio/vad.ts";
import type { Cancel, Clock } from "../../call/clock.ts";
import type { ChatMessage } from "../../providers/llm/language_model.ts";
import type { ProviderError } from "../../providers/provider_error.ts";
import type { SpeechEvent } from "../../providers/stt/speech_to_text.ts";
import type {
  Bot,
  BotLiveState,
  BotReport,
  CallInfo,
  CallOutput,
} from "../bot.ts";
import { AudioTrack } from "./audio_track.ts";
import { BargeInGuard, isBackchannel } from "./barge_in.ts";
import type { AgentConfig } from "./config.ts";
import type { AudioCache, AudioCacheKey } from "./greeting_cache.ts";
import { Conversation } from "./history.ts";
import { Listener } from "./listener.ts";
import { CallTranscript } from "./transcript.ts";
import type { CallOutcomes } from "./outcomes.ts";
import { type AgentProviders, createProviders } from "./providers.ts";
import {
  type FallbackAudio,
  Reply,
  type ReplyPlan,
  type ReplyResult,
} from "./reply.ts";
import { fallbackTone, synthesizeInto } from "./speech.ts";
import {
  TimelineLog,
  type TurnSummary,
  type TurnTimeline,
  turnTiming,
  type TurnTrigger,
} from "./timeline.ts";
import { END_CALL_TOOL, TRANSFER_TOOL } from "./tools.ts";
import type { ToolDefinition } from "../../providers/llm/language_model.ts";
import type { TextToSpeech } from "../../providers/tts/text_to_speech.ts";
import type { ToolResult, ToolRunner } from "./tool_runner.ts";
import { type CallContext, resolveCallContext } from "./call_context.ts";
import { type CallerTurn, TurnDetector } from "./turns.ts";

/** Ways to follow and steer a call from application code. */
export interface AgentHooks {
  /**
   * A keypad digit, before the agent sees it. Return `false` to keep it out
   * of the conversation (the application handles it).
   */
  dtmf?(digit: string, call: CallInfo): boolean | void;
  /** The model ended the call; the stream closes right after. */
  endCall?(call: CallInfo, details: { reason?: string }): void;
  /** The model transferred the call; the stream closes right after, and Exotel's flow continues. */
  transfer?(call: CallInfo, details: { reason?: string }): void;
  /** A speech or language provider failed (the call goes on, on the fallback line or a reconnect). */
  providerError?(error: ProviderError, call: CallInfo): void;
  /** A tool call finished, whatever its outcome (metrics). */
  toolCall?(result: ToolResult, call: CallInfo): void;
}

/** What every agent bot of a server shares. */
export interface AgentDependencies {
  /** The configuration. */
  config: AgentConfig;
  /** The adapters. */
  providers: AgentProviders;
  /** Synthesised greetings and fallback lines. */
  cache: AudioCache;
  /** Where `end_call` and `transfer` are remembered, for a Passthru applet. */
  outcomes?: CallOutcomes;
  /** Time and timers. */
  clock: Clock;
  /** The player's chunk size (`CHUNK_BYTES`), for the timeline's first-frame moment. */
  chunkBytes: number;
  /** Application hooks. */
  hooks: AgentHooks;
  /** The agent's tools besides `end_call` and `transfer`. */
  toolRunner?: ToolRunner;
  /** Epoch milliseconds, for `{{date}}` and `{{time}}`; `Date.now` by default. */
  wallClock?: () => number;
  /** The voice a setup webhook asked for; built from the configuration by default. */
  voiceFor?(voice: string): TextToSpeech;
  /** The voice-activity detector per call (`VAD`); the energy detector by default. */
  detectors?: SpeechDetectorFactory;
}

/** Appended to the system prompt: what the model must know about the phone line. */
export const VOICE_INSTRUCTIONS =
  'You are talking with a caller on a phone line, and your words are spoken aloud: write plain spoken sentences, no lists, Markdown, emoji or URLs. Keys the caller presses arrive as "Keypad input: <keys>". Call end_call when the conversation is over, and transfer when the caller needs a human.';

/** {@linkcode VOICE_INSTRUCTIONS} for an agent with only some of the built-in tools. */
export function voiceInstructions(
  builtins: { endCall: boolean; transfer: boolean },
): string {
  if (builtins.endCall && builtins.transfer) return VOICE_INSTRUCTIONS;
  const base = VOICE_INSTRUCTIONS.slice(
    0,
    VOICE_INSTRUCTIONS.indexOf(" Call end_call"),
  );
  if (builtins.endCall) {
    return `${base} Call end_call when the conversation is over.`;
  }
  if (builtins.transfer) {
    return `${base} Call transfer when the caller needs a human.`;
  }
  return base;
}

const LANGUAGE_NAMES = new Intl.DisplayNames(["en"], { type: "language" });

/**
 * A language's English name for the model, e.g. "Hindi" for `hi-IN`.
 *
 * @example
 * ```ts
 * languageName("hi-IN"); // "Hindi"
 * ```
 */
export function languageName(language: string): string {
  try {
    return LANGUAGE_NAMES.of(language.split("-")[0]) ?? language;
  } catch {
    return language;
  }
}

/** Longest run of keypad digits sent as one turn. */
const MAX_DTMF_DIGITS = 32;

const baseLog = getLogger(["exovoice", "agent"]);

/**
 * One call's agent. Create it through the factory in `mod.ts`.
 *
 * @example
 * ```ts ignore
 * const bot = new AgentBot(info, output, dependencies);
 * bot.start();
 * bot.audio(pcm);
 * bot.timeline(); // the last turns' latencies
 * ```
 */
export class AgentBot implements Bot {
  /** Resolves once the bot has released everything after {@linkcode AgentBot.stop}. */
  readonly closed: Promise<void>;
  #info: CallInfo;
  #output: CallOutput;
  #deps: AgentDependencies;
  #log: Logger;
  #vad: SpeechDetector;
  #guard: BargeInGuard;
  #turns: TurnDetector;
  #listener: Listener;
  #conversation: Conversation;
  #timelines = new TimelineLog(10);
  #transcript = new CallTranscript();
  /** When the call started, on the clock: transcript times count from it. */
  #startedAt: number;
  #reply: Reply | undefined;
  #replyCount = 0;
  #chain: Promise<void> = Promise.resolve();
  /** Voiced ms of the caller's current utterance that came before the reply began. */
  #voicedBaseline = 0;
  /** Whether the caller's current utterance began while a reply was active. */
  #overlapped = false;
  #lastVoicedEndMs: number | undefined;
  #lastPushAt = 0;
  #lastPushAudioMs = 0;
  #dtmfDigits = "";
  #cancelDtmf: Cancel | undefined;
  /** The bot is paused over caller speech the guard has not judged yet. */
  #paused = false;
  #stopped = false;
  /** Speech-to-text failed and has not reported anything since. */
  #sttTrouble = false;
  #warming: Promise<void> = Promise.resolve();
  /** The call's language: the agent's, or the setup webhook's. */
  #language: string;
  /** The call's voice: the agent's, or the one the setup webhook asked for. */
  #tts: TextToSpeech;
  /** The voice for languages without one of their own in `TTS_VOICES`. */
  #baseTts: TextToSpeech;
  /** Voices made for switched languages, by language. */
  #voices = new Map<string, TextToSpeech>();
  /** The language speech-to-text detected in the caller's latest final, when it detects one. */
  #heardLanguage: string | undefined;
  /** What the model may call. */
  #tools: ToolDefinition[];
  /** Fires when the call ends: tools in flight stop. */
  #callEnded = new AbortController();
  /** The setup webhook's round trip, while it runs. */
  #starting: Promise<void> = Promise.resolve();
  #markClosed!: () => void;

  /** Creates the agent for one call; nothing starts before {@linkcode AgentBot.start}. */
  constructor(info: CallInfo, output: CallOutput, deps: AgentDependencies) {
    this.#info = info;
    this.#output = output;
    this.#deps = deps;
    this.#log = baseLog.with({ callId: info.callId });
    this.closed = new Promise((resolve) => this.#markClosed = resolve);
    const { config, providers, clock } = deps;
    this.#startedAt = clock.now();
    this.#language = config.language;
    this.#tts = providers.tts;
    this.#baseTts = providers.tts;
    this.#tools = [
      ...(config.builtinTools.endCall ? [END_CALL_TOOL] : []),
      ...(config.builtinTools.transfer ? [TRANSFER_TOOL] : []),
      ...(deps.toolRunner?.definitions ?? []),
    ];
    this.#vad = (deps.detectors ?? energyDetector)(info.sampleRate, {
      onFrame: (frame) => {
        if (frame.isSpeech) {
          this.#lastVoicedEndMs = frame.atMs + frame.durationMs;
        }
      },
      onAnalysed: (events) => this.#onVoiceActivity(events),
    });
    this.#guard = new BargeInGuard(config.bargeIn);
    this.#turns = new TurnDetector({
      clock,
      timeoutMs: config.turnTimeoutMs,
      onTurn: (turn) => this.#onTurn(turn),
    });
    this.#listener = new Listener({
      stt: providers.stt,
      callRate: info.sampleRate,
      sttRate: providers.sttSampleRate(info.sampleRate),
      language: config.language,
      languages: config.languages,
      clock,
      onEvent: (event) => this.#onSpeech(event),
      onError: (error) => this.#onListenerError(error),
    });
    this.#conversation = new Conversation(
      `${config.prompt}\n\n${voiceInstructions(config.builtinTools)}`,
      { maxMessages: config.maxHistory },
    );
  }

  /** The last turns' latency timelines, oldest first, for monitoring. */
  timeline(): TurnSummary[] {
    return this.#timelines.recent();
  }

  /** The conversation so far, without the system prompt. */
  history(): readonly ChatMessage[] {
    return this.#conversation.history();
  }

  /** The whole call's transcript (what the bot said, and what the caller heard of it when cut off) and turn timings, for the call record. */
  report(): BotReport {
    return {
      transcript: this.#transcript.entries(),
      turns: this.#transcript.turns(),
    };
  }

  /** What the agent is doing now and the caller's words not answered yet, for the console. */
  live(): BotLiveState {
    const reply = this.#reply;
    const activity = this.#paused
      ? "paused"
      : reply?.active && !reply.cancelled
      ? reply.speaking ? "speaking" : "thinking"
      : "listening";
    return { activity, partial: this.#turns.text };
  }

  /**
   * Asks the setup webhook about the call (when there is one, for at most
   * its timeout), fills the prompt and greeting templates, opens
   * speech-to-text and says the greeting. Caller audio meanwhile is held.
   */
  start(): void | Promise<void> {
    if (this.#stopped) return;
    const context = resolveCallContext(this.#info, this.#deps.config, {
      clock: this.#deps.clock,
      wallClock: this.#deps.wallClock,
      log: this.#log,
    });
    this.#starting = context.then((resolved) => {
      if (this.#stopped) return;
      if (resolved === "rejected") this.#output.hangup("rejected");
      else this.#begin(resolved);
    });
    return this.#starting;
  }

  #begin(context: CallContext): void {
    const { config, cache } = this.#deps;
    if (context.language) {
      this.#language = context.language;
      this.#listener.language = context.language;
    }
    if (context.voice && context.voice !== this.#tts.voice) {
      this.#tts = this.#voice(context.voice) ?? this.#tts;
      this.#baseTts = this.#tts;
    } else {
      const own = config.voices?.[this.#language];
      if (own && own !== this.#tts.voice) {
        this.#tts = this.#voice(own) ?? this.#tts;
      }
    }
    this.#listener.start();
    this.#conversation.systemPrompt = `${context.prompt}\n\n${
      voiceInstructions(config.builtinTools)
    }`;
    const { greeting } = context;
    // A greeting made for one caller is not worth a place in the cache.
    const key = greeting === config.greeting
      ? this.#cacheKey(greeting)
      : undefined;
    const cached = key && cache.get(key);
    this.#startReply({
      kind: "say",
      text: greeting,
      cached,
      onSynthesized: (pcm) => {
        if (key) cache.set(key, pcm);
        this.#warmFallback();
      },
    });
    if (cached) this.#warmFallback();
  }

  /** Caller audio: to speech-to-text and the voice-activity detector. */
  audio(pcm: Uint8Array): void {
    if (this.#stopped) return;
    this.#listener.push(pcm);
    this.#vad.push(pcm);
  }

  /** The detector analysed more caller audio (at once for the energy detector, a moment later for Silero). */
  #onVoiceActivity(events: VadEvent[]): void {
    if (this.#stopped) return;
    this.#lastPushAt = this.#deps.clock.now();
    this.#lastPushAudioMs = this.#vad.audioMs;
    for (const event of events) {
      if (event.type === "speech_start") {
        this.#turns.speechStarted();
        // A new utterance (nothing transcribed since the last turn) over
        // silence is not an overlap, whatever an earlier one was.
        if (this.#reply?.active) this.#overlapped = true;
        else if (this.#turns.text === "") this.#overlapped = false;
      } else {
        this.#turns.speechEnded();
        this.#voicedBaseline = 0;
      }
    }
    this.#checkBargeIn();
    if (this.#paused && this.#quietMs() >= this.#deps.config.bargeIn.resumeMs) {
      this.#resume("silence");
    }
  }

  /** A keypad digit: interrupts the bot, and is sent to the model after a pause or `#`. */
  dtmf(digit: string): void {
    if (this.#stopped) return;
    try {
      if (this.#deps.hooks.dtmf?.(digit, this.#info) === false) return;
    } catch (error) {
      this.#log.error("DTMF hook failed: {error}", { error });
    }
    if (this.#deps.config.bargeIn.enabled) this.#bargeIn("dtmf");
    this.#dtmfDigits += digit;
    this.#cancelDtmf?.();
    this.#cancelDtmf = undefined;
    if (digit === "#" || this.#dtmfDigits.length >= MAX_DTMF_DIGITS) {
      this.#flushDtmf();
    } else {
      this.#cancelDtmf = this.#deps.clock.schedule(
        () => this.#flushDtmf(),
        this.#deps.config.dtmfTimeoutMs,
      );
    }
  }

  /** Exotel echoed a mark. */
  marked(name: string): void {
    this.#reply?.marked(name);
  }

  /** The call is over: aborts everything and closes speech-to-text. */
  stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#callEnded.abort();
      this.#cancelDtmf?.();
      this.#turns.reset();
      this.#reply?.stop();
      const reply = this.#reply?.done;
      Promise.all([
        this.#starting,
        this.#listener.close(),
        this.#vad.close(),
        this.#warming,
        reply,
        this.#chain,
      ])
        .then(() => this.#markClosed());
    }
    return this.closed;
  }

  #onSpeech(event: SpeechEvent): void {
    if (this.#stopped) return;
    this.#sttTrouble = false;
    switch (event.type) {
      case "speech_started":
        this.#turns.speechStarted();
        if (this.#reply?.active) this.#overlapped = true;
        return;
      case "partial":
        this.#turns.partial(event.text);
        this.#checkBargeIn();
        return;
      case "final":
        if (event.language) this.#heardLanguage = event.language;
        this.#turns.partial(event.text);
        this.#checkBargeIn();
        this.#resumeAfterBackchannel();
        this.#turns.final(event.text, event.endOfTurn);
        return;
      case "end_of_turn":
        this.#turns.endOfTurn();
        return;
    }
  }

  #onListenerError(error: ProviderError): void {
    this.#sttTrouble = true;
    this.#deps.hooks.providerError?.(error, this.#info);
    const { provider, kind, status, message } = error;
    this.#log.warn(
      "Speech-to-text {provider} failed ({kind}), reconnecting: {message}",
      { provider, kind, status, message, failures: this.#listener.failures },
    );
  }

  /** Whether the caller's activity since the reply began interrupts it, or pauses it until that is clear. */
  #checkBargeIn(): void {
    const reply = this.#reply;
    if (!reply?.active || reply.cancelled) return;
    // Voice alone interrupts only when it stands out from the line's
    // background: steady babble, TV or music never does.
    const voicedMs = Math.max(
      0,
      this.#vad.foregroundMs - this.#voicedBaseline,
    );
    if (
      this.#guard.shouldInterrupt({ voicedMs, transcript: this.#turns.text })
    ) {
      this.#bargeIn(
        voicedMs >= this.#guard.options.minSpeechMs ? "speech" : "words",
      );
    } else if (!this.#paused && this.#guard.shouldPause(voicedMs)) {
      this.#paused = true;
      this.#log.debug("Caller spoke over the bot: paused", { voicedMs });
      this.#output.pause();
    }
  }

  /** Caller audio since their last voiced frame, in ms. */
  #quietMs(): number {
    return this.#vad.audioMs - (this.#lastVoicedEndMs ?? 0);
  }

  /** The caller's words so far are only acknowledgements and they are quiet: no need to wait. */
  #resumeAfterBackchannel(): void {
    const { backchannels } = this.#deps.config.bargeIn;
    if (
      this.#paused && !this.#vad.inSpeech &&
      isBackchannel(this.#turns.text, backchannels)
    ) this.#resume("backchannel");
  }

  /** Ends a pause: the bot goes on where the caller stopped hearing it. */
  #resume(reason: "silence" | "backchannel" | "reply_over"): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (reason !== "reply_over") {
      this.#log.debug("Not an interruption ({reason}): resumed", { reason });
    }
    this.#output.resume();
  }

  #bargeIn(reason: "speech" | "words" | "dtmf" | "turn"): void {
    const reply = this.#reply;
    if (!reply?.active || reply.cancelled) return;
    this.#log.info("Caller interrupted the bot ({reason})", {
      reason,
      speaking: reply.speaking,
    });
    reply.interrupt();
    // The clear ended any pause in the output.
    this.#paused = false;
  }

  #onTurn(turn: CallerTurn): void {
    if (this.#stopped) return;
    const text = turn.text.trim();
    const reply = this.#reply;
    if (text === "") {
      // Speech with no transcript: noise, or speech-to-text is down. Only
      // the second deserves an answer.
      if (this.#sttTrouble && !reply?.active) {
        this.#log.warn("Caller spoke while speech-to-text was down");
        this.#enqueue(() => this.#sayFallback());
      }
      return;
    }
    // An acknowledgement said over the bot is not a turn, even when its
    // transcript arrives after the bot has finished. (An empty turn above
    // leaves the flag alone: a slow transcript may still be coming.)
    const overlapped = this.#overlapped;
    this.#overlapped = false;
    const backchannels = this.#deps.config.bargeIn.backchannels;
    if (overlapped && isBackchannel(text, backchannels)) {
      this.#log.debug("Backchannel while the bot spoke: not a turn");
      return;
    }
    this.#respond(text, turn.trigger, turn.finalAt);
  }

  #flushDtmf(): void {
    this.#cancelDtmf?.();
    this.#cancelDtmf = undefined;
    if (this.#stopped || this.#dtmfDigits === "") return;
    const digits = this.#dtmfDigits;
    this.#dtmfDigits = "";
    this.#respond(`Keypad input: ${digits}`, "dtmf", this.#deps.clock.now());
  }

  /**
   * Answers a caller turn. A reply still thinking has said nothing, so the
   * caller's newer words replace it; one speaking is cut when the guard
   * says the words interrupt, and otherwise finishes first.
   */
  #respond(text: string, trigger: TurnTrigger, finalAt?: number): void {
    const now = this.#deps.clock.now();
    const speechEnd = trigger === "dtmf" ? undefined : this.#speechEndAt();
    const heard = trigger === "dtmf" ? undefined : this.#heardLanguage;
    this.#heardLanguage = undefined;
    const cut = this.#guard.shouldInterrupt({
      voicedMs: Math.max(0, this.#vad.foregroundMs - this.#voicedBaseline),
      transcript: text,
    });
    if (cut) this.#bargeIn("turn");
    this.#enqueue(async () => {
      const current = this.#reply;
      if (current?.active) {
        if (cut || !current.speaking) current.interrupt();
        await current.done;
      }
      if (this.#stopped) return;
      if (heard !== undefined) this.#switchLanguage(heard);
      this.#conversation.addUser(text);
      this.#transcript.caller(text, this.#sinceStart());
      const timeline = this.#timelines.begin(trigger, Date.now());
      if (speechEnd !== undefined) timeline.record("speechEnd", speechEnd);
      timeline.record("finalTranscript", finalAt ?? now);
      const { config } = this.#deps;
      this.#startReply({
        kind: "model",
        messages: this.#conversation.messages(),
        tools: this.#tools,
        goodbyeText: config.goodbyeText,
        transferText: config.transferText,
        toolRunner: this.#deps.toolRunner,
        call: {
          callId: this.#info.callId,
          streamSid: this.#info.streamSid,
          from: this.#info.from,
          to: this.#info.to,
          customParameters: this.#info.customParameters,
        },
        toolSignal: this.#callEnded.signal,
      }, timeline);
    });
  }

  /**
   * The caller spoke another of the agent's languages: the model is told,
   * and replies are spoken in that language, with its voice.
   */
  #switchLanguage(language: string): void {
    const { config } = this.#deps;
    if (language === this.#language) return;
    if (!(config.languages ?? []).includes(language)) return;
    const from = this.#language;
    this.#language = language;
    const voice = config.voices?.[language];
    this.#tts = voice === undefined
      ? this.#baseTts
      : this.#voices.get(language) ?? this.#voice(voice) ?? this.#baseTts;
    this.#voices.set(language, this.#tts);
    const name = languageName(language);
    this.#conversation.note =
      `The caller is now speaking ${name} (${language}); answer in ${name}.`;
    this.#log.info("Caller switched from {from} to {language}", {
      from,
      language,
      voice: this.#tts.voice,
    });
  }

  /** A text-to-speech with `voice`, or undefined (logged) when the vendor cannot make one. */
  #voice(voice: string): TextToSpeech | undefined {
    const { config } = this.#deps;
    try {
      return this.#deps.voiceFor?.(voice) ??
        createProviders({ ...config, tts: { ...config.tts, voice } }).tts;
    } catch (error) {
      this.#log.warn(
        "Voice {voice} unusable, keeping the current one: {error}",
        {
          voice,
          error,
        },
      );
      return undefined;
    }
  }

  /** Runs `task` after the tasks before it, so turns start their replies in order. */
  #enqueue(task: () => Promise<void> | void): void {
    this.#chain = this.#chain.then(task).catch((error) => {
      this.#log.error("Agent failed to handle a turn: {error}", { error });
    });
  }

  /** The fallback line as a reply of its own, when there is no turn to answer. */
  async #sayFallback(): Promise<void> {
    if (this.#stopped || this.#reply?.active) return;
    const fallback = await this.#fallbackAudio();
    if (this.#stopped || this.#reply?.active) return;
    this.#startReply({
      kind: "say",
      text: fallback.text,
      cached: fallback.pcm,
    });
  }

  #startReply(plan: ReplyPlan, timeline?: TurnTimeline): Reply {
    const { providers, clock, chunkBytes } = this.#deps;
    const id = ++this.#replyCount;
    const reply = new Reply(plan, {
      output: this.#output,
      llm: providers.llm,
      tts: this.#tts,
      sampleRate: this.#info.sampleRate,
      language: this.#language,
      spokenForms: this.#deps.config.spokenForms,
      chunkBytes,
      markPrefix: `agent-${id}`,
      log: this.#log,
      now: () => clock.now(),
      schedule: (callback, ms) => clock.schedule(callback, ms),
      timeline,
      fallback: () => this.#fallbackAudio(),
      onToolResult: (result) => this.#deps.hooks.toolCall?.(result, this.#info),
    });
    this.#reply = reply;
    // Only speech after this moment can interrupt the reply.
    this.#voicedBaseline = this.#vad.foregroundMs;
    this.#overlapped = false;
    const startedAt = this.#sinceStart();
    reply.done.then((result) =>
      this.#replyDone(reply, result, startedAt, timeline)
    );
    return reply;
  }

  #replyDone(
    reply: Reply,
    result: ReplyResult,
    startedAt: number,
    timeline: TurnTimeline | undefined,
  ): void {
    try {
      if (result.error) {
        this.#deps.hooks.providerError?.(result.error, this.#info);
      }
      // The tools ran before the words that report their results.
      for (const tool of result.toolResults) {
        this.#transcript.tool({
          name: tool.name,
          arguments: tool.arguments,
          outcome: tool.outcome,
          latencyMs: tool.latencyMs,
          atMs: tool.at - this.#startedAt,
        });
      }
      this.#transcript.bot({
        said: result.said,
        heard: result.heard,
        interrupted: result.status === "interrupted",
      }, startedAt);
      this.#finishReply(reply, result, timeline);
    } catch (error) {
      this.#log.error("Agent failed to finish a reply: {error}", { error });
    }
  }

  #finishReply(
    reply: Reply,
    result: ReplyResult,
    timeline: TurnTimeline | undefined,
  ): void {
    if (this.#reply === reply) {
      this.#reply = undefined;
      // Nothing may stay paused behind a reply that is over.
      this.#resume("reply_over");
    }
    for (const message of result.toolMessages) {
      if (message.role === "assistant") {
        this.#conversation.addAssistant(message.content, message.toolCalls);
      } else if (message.role === "tool") {
        this.#conversation.addToolResult(message.toolCallId, message.content);
      }
    }
    this.#conversation.addAssistant(result.heard);
    if (timeline) {
      timeline.finish(result.status === "done" ? "answered" : result.status);
      const summary = timeline.summary();
      this.#transcript.turn(turnTiming(summary));
      this.#log.info(
        "Turn {turn} {outcome}: caller speech end to first audio {speechEndToFirstMediaMs} ms",
        { ...summary },
      );
    }
    if (result.action && !this.#stopped) {
      const { kind, reason } = result.action;
      this.#deps.outcomes?.set(this.#info.callId, kind);
      try {
        const details = reason === undefined ? {} : { reason };
        if (kind === "end_call") {
          this.#deps.hooks.endCall?.(this.#info, details);
        } else this.#deps.hooks.transfer?.(this.#info, details);
      } catch (error) {
        this.#log.error("{kind} hook failed: {error}", { kind, error });
      }
      this.#log.info("Model asked to {kind}: closing the stream", {
        kind,
        reason,
      });
      this.#output.hangup(kind);
    }
  }

  /** Milliseconds since the call started. */
  #sinceStart(): number {
    return this.#deps.clock.now() - this.#startedAt;
  }

  /** When the caller stopped speaking, on the clock: the end of the last voiced frame. */
  #speechEndAt(): number | undefined {
    if (this.#lastVoicedEndMs === undefined) return undefined;
    return this.#lastPushAt - (this.#lastPushAudioMs - this.#lastVoicedEndMs);
  }

  #cacheKey(text: string): AudioCacheKey {
    const tts = this.#tts;
    return {
      provider: tts.name,
      voice: tts.voice,
      language: this.#language,
      sampleRate: this.#info.sampleRate,
      text,
    };
  }

  /** Synthesises the fallback line in the background, so a later failure has it ready. */
  #warmFallback(): void {
    if (this.#stopped) return;
    const key = this.#cacheKey(this.#deps.config.fallbackText);
    if (this.#deps.cache.get(key)) return;
    this.#warming = this.#warming.then(() => this.#fallbackAudio()).then(
      () => {},
    );
  }

  /**
   * The fallback line from the cache, else synthesised now (once for all
   * calls asking at the same time), else a tone. Not aborted when the call
   * ends: the audio is for every call.
   */
  async #fallbackAudio(): Promise<FallbackAudio> {
    const { config, cache } = this.#deps;
    const text = config.fallbackText;
    const pcm = await cache.getOrCreate(this.#cacheKey(text), async () => {
      const track = new AudioTrack();
      try {
        await synthesizeInto(track, text, {
          tts: this.#tts,
          sampleRate: this.#info.sampleRate,
          language: this.#language,
          spokenForms: config.spokenForms,
        });
        return track.pcm();
      } catch (error) {
        this.#log.warn("Fallback line could not be synthesised: {error}", {
          error: error instanceof Error ? error.message : String(error),
        });
        return undefined;
      }
    });
    if (pcm && pcm.length > 0) return { text, pcm };
    return { text: "", pcm: fallbackTone(this.#info.sampleRate) };
  }
}
