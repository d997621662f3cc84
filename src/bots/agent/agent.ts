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
import {
  BargeInGuard,
  type CallerActivity,
  isBackchannel,
  words,
} from "./barge_in.ts";
import { EchoGuard } from "../../audio/echo_guard.ts";
import { silenceLines, SilenceWatch } from "./silence.ts";
import type { AgentConfig } from "./config.ts";
import type { AudioCache, AudioCacheKey } from "./audio_cache.ts";
import { Conversation } from "./conversation.ts";
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
import type { LanguageModel } from "../../providers/llm/language_model.ts";
import type { ProviderHealth } from "../../providers/fallback/provider_health.ts";
import type { SampleRate } from "../../audio/pcm.ts";
import { RECORDED_LINES, type RecordedLine } from "./recorded_lines.ts";
import { FallbackTts } from "../../providers/fallback/fallback_tts.ts";

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
  /** Epoch milliseconds, for `{{date}}` and `{{time}}`; the clock's `epochMs()` by default. */
  wallClock?: () => number;
  /** The voice a setup webhook asked for; built from the configuration by default. */
  voiceFor?(voice: string): TextToSpeech;
  /** The voice-activity detector per call (`VAD`); the energy detector by default. */
  detectors?: SpeechDetectorFactory;
  /** The providers' circuit breakers, shared by every call (a voice the setup webhook asked for uses them too). */
  health?: ProviderHealth;
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
  /** The call's model (over the endpoint list, when there is one). */
  #llm: LanguageModel;
  /** Turns in a row answered with the fallback line. */
  #failedTurns = 0;
  /** The fallback line said when speech-to-text was down: a failed turn too. */
  #fallbackReply: Reply | undefined;
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
  /** Tells the bot's own voice coming back from the caller's. */
  #echo: EchoGuard;
  /** The caller's echo-explained audio (ms) when the current reply began. */
  #echoAtReplyStart = 0;
  /** The most caller voice (ms, echo excluded) since the reply began, in the current utterance. */
  #peakVoicedMs = 0;
  /** Words of the most recent reply: its echo may come back transcribed. */
  #botWords = new Set<string>();
  /** Whether the caller heard echo during the most recent reply. */
  #echoDuringReply = false;
  /** The greeting, while it is the reply in progress. */
  #greeting: Reply | undefined;
  /** Words of the caller's transcript said while the greeting could not be cut. */
  #protectedWords = 0;
  /** Counts the caller's silence after the bot has finished. */
  #silence: SilenceWatch;
  /** The re-prompt or silence goodbye in progress. */
  #silenceLine: { reply: Reply; kind: "reprompt" | "goodbye" } | undefined;

  /** Creates the agent for one call; nothing starts before {@linkcode AgentBot.start}. */
  constructor(info: CallInfo, output: CallOutput, deps: AgentDependencies) {
    this.#info = info;
    this.#output = output;
    this.#deps = deps;
    this.#log = baseLog.with({ callId: info.callId });
    this.closed = new Promise((resolve) => this.#markClosed = resolve);
    const { config, clock } = deps;
    // With provider lists, the call gets its own view: a provider that
    // fails is skipped for the rest of this call.
    const providers = deps.providers.forCall?.() ?? deps.providers;
    this.#startedAt = clock.now();
    this.#language = config.language;
    this.#tts = providers.tts;
    this.#llm = providers.llm;
    this.#baseTts = providers.tts;
    this.#tools = [
      ...(config.builtinTools.endCall ? [END_CALL_TOOL] : []),
      ...(config.builtinTools.transfer ? [TRANSFER_TOOL] : []),
      ...(deps.toolRunner?.definitions ?? []),
    ];
    this.#echo = new EchoGuard(info.sampleRate);
    output.onSent?.((pcm, startsAt) =>
      this.#echo.sent(pcm, { sentAt: clock.now(), startsAt })
    );
    this.#silence = new SilenceWatch({
      clock,
      config: config.silence,
      ready: () => this.#quiet(),
      onReprompt: () => this.#enqueue(() => this.#saySilenceLine("reprompt")),
      onGiveUp: () => this.#enqueue(() => this.#saySilenceLine("goodbye")),
    });
    this.#vad = (deps.detectors ?? energyDetector)(info.sampleRate, {
      isEcho: (atMs, durationMs) => this.#echo.isEcho(atMs, durationMs),
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
    this.#greeting = this.#startReply({
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
    this.#echo.heard(pcm, this.#deps.clock.now());
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
        // A voice that ends without a turn leaves the line quiet again.
        if (!this.#silence.waiting && this.#quiet()) this.#silence.idle();
      }
    }
    // Only the caller's own voice stops the silence count: not babble, a
    // TV or music behind them, nor the bot's echo.
    if (this.#callerSpeaking()) this.#silence.busy();
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
    this.#silence.busy();
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
      this.#silence.stop();
      this.#output.onSent?.(undefined);
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
        if (event.text !== "") this.#silence.busy();
        this.#turns.partial(event.text);
        this.#checkBargeIn();
        return;
      case "final":
        if (event.text !== "") this.#silence.busy();
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
    if (this.#greetingHolds(reply)) {
      // Only what the caller does after the greeting's first moments counts.
      this.#voicedBaseline = this.#vad.foregroundMs;
      this.#protectedWords = words(this.#turns.text).length;
      return;
    }
    const activity = this.#callerActivity(this.#turns.text);
    const { voicedMs } = activity;
    if (this.#guard.shouldInterrupt(activity)) {
      this.#bargeIn(
        voicedMs >= this.#guard.options.minSpeechMs ? "speech" : "words",
      );
    } else if (!this.#paused && this.#guard.shouldPause(voicedMs)) {
      this.#paused = true;
      this.#log.debug("Caller spoke over the bot: paused", { voicedMs });
      this.#output.pause();
    }
  }

  /**
   * What the caller did since the reply began, as barge-in judges it:
   * voice that stands out from the line's background (steady babble, TV or
   * music never does) and is not the bot's own echo; words not said while
   * the greeting could not be cut, nor, once the bot's echo has been heard,
   * the bot's own words coming back.
   */
  #callerActivity(text: string): CallerActivity {
    const voicedMs = Math.max(0, this.#vad.foregroundMs - this.#voicedBaseline);
    this.#peakVoicedMs = Math.max(this.#peakVoicedMs, voicedMs);
    let heard = words(text);
    if (this.#protectedWords > 0) heard = heard.slice(this.#protectedWords);
    const own = this.#echoedWords();
    if (own) heard = heard.filter((word) => !own.has(word));
    return { voicedMs, transcript: heard.join(" ") };
  }

  /**
   * The words of the reply in progress, or else of the last one, when the
   * caller's line carried its echo: what speech-to-text may hear of the
   * bot itself.
   */
  #echoedWords(): Set<string> | undefined {
    const reply = this.#reply;
    if (reply?.active) {
      return this.#echo.echoMs > this.#echoAtReplyStart
        ? new Set(words(reply.said))
        : undefined;
    }
    return this.#echoDuringReply ? this.#botWords : undefined;
  }

  /** Whether `reply` is the greeting in its first `AGENT_BARGE_IN_AFTER_MS`. */
  #greetingHolds(reply: Reply): boolean {
    const { afterMs } = this.#deps.config.bargeIn;
    if (afterMs <= 0 || reply !== this.#greeting) return false;
    const since = reply.speakingSince;
    return since === undefined || this.#deps.clock.now() - since < afterMs;
  }

  /** Whether nothing is going on: no reply, no caller speech, no words waiting. */
  #quiet(): boolean {
    return !this.#stopped && !this.#reply?.active && !this.#callerSpeaking() &&
      this.#turns.text === "" && this.#dtmfDigits === "";
  }

  /** Whether the caller's own voice is on the line now: speech that stands out from the background and is not echo. */
  #callerSpeaking(): boolean {
    return this.#vad.inSpeech && this.#vad.foregroundMs > 0;
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
    // The turn's words are used up: a later one starts from none held back.
    const protectedWords = this.#protectedWords;
    this.#protectedWords = 0;
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
    const peakVoicedMs = this.#peakVoicedMs;
    this.#peakVoicedMs = 0;
    const backchannels = this.#deps.config.bargeIn.backchannels;
    if (overlapped && isBackchannel(text, backchannels)) {
      this.#log.debug("Backchannel while the bot spoke: not a turn");
      if (this.#quiet()) this.#silence.idle();
      return;
    }
    // The bot's own words transcribed from its echo, with no voice of the
    // caller's own in them, are not the caller speaking.
    const own = this.#echoedWords();
    if (
      overlapped && own !== undefined &&
      peakVoicedMs < this.#guard.options.minSpeechMs &&
      words(text).every((word) => own.has(word))
    ) {
      this.#log.info("The bot's own echo was transcribed: not a turn");
      if (this.#quiet()) this.#silence.idle();
      return;
    }
    this.#protectedWords = protectedWords;
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
    this.#silence.answered();
    const holding = this.#reply !== undefined &&
      this.#greetingHolds(this.#reply);
    const cut = !holding &&
      (trigger === "dtmf"
        ? this.#guard.shouldInterrupt({ voicedMs: 0, transcript: text })
        : this.#guard.shouldInterrupt(this.#callerActivity(text)));
    this.#protectedWords = 0;
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
      const timeline = this.#timelines.begin(
        trigger,
        this.#deps.clock.epochMs(),
      );
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
        createProviders({ ...config, tts: { ...config.tts, voice } }, {
          health: this.#deps.health,
        }).tts;
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
    const fallback = await this.#failedTurnAudio();
    if (this.#stopped || this.#reply?.active) return;
    this.#fallbackReply = this.#startReply({
      kind: "say",
      text: fallback.text,
      cached: fallback.pcm,
    });
  }

  #startReply(plan: ReplyPlan, timeline?: TurnTimeline): Reply {
    const { clock, chunkBytes } = this.#deps;
    const id = ++this.#replyCount;
    const reply = new Reply(plan, {
      output: this.#output,
      llm: this.#llm,
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
      fallback: () => this.#failedTurnAudio(),
      onToolResult: (result) => this.#deps.hooks.toolCall?.(result, this.#info),
    });
    this.#reply = reply;
    this.#silence.busy();
    // Only speech after this moment can interrupt the reply.
    this.#voicedBaseline = this.#vad.foregroundMs;
    this.#overlapped = false;
    this.#echoAtReplyStart = this.#echo.echoMs;
    this.#peakVoicedMs = 0;
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
    if (this.#greeting === reply) this.#greeting = undefined;
    this.#botWords = new Set(words(result.said));
    this.#echoDuringReply = this.#echo.echoMs > this.#echoAtReplyStart;
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
    this.#countFailure(reply, result);
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
    const line = this.#silenceLine;
    if (line?.reply === reply) {
      this.#silenceLine = undefined;
      const heard = result.status === "done" || result.status === "failed";
      if (line.kind === "goodbye" && heard && !this.#stopped) {
        this.#hangUpOnSilence();
        return;
      }
    }
    if (!result.action && result.status !== "stopped" && this.#quiet()) {
      this.#silence.idle();
    }
  }

  /** Says the re-prompt or the silence goodbye: fixed lines, their audio cached for every call. */
  #saySilenceLine(kind: "reprompt" | "goodbye"): void {
    if (!this.#quiet()) return;
    const { config, cache } = this.#deps;
    const lines = silenceLines(config.silence, this.#language);
    const text = kind === "reprompt" ? lines.reprompt : lines.goodbye;
    this.#log.info("Caller silent for {seconds} s: {kind} ({count})", {
      seconds: config.silence.repromptS,
      kind,
      count: this.#silence.reprompts,
    });
    const key = this.#cacheKey(text);
    const reply = this.#startReply({
      kind: "say",
      text,
      cached: cache.get(key),
      onSynthesized: (pcm) => cache.set(key, pcm),
    });
    this.#silenceLine = { reply, kind };
  }

  /** The silence goodbye was heard: the call ends, as an `end_call` would end it. */
  #hangUpOnSilence(): void {
    this.#deps.outcomes?.set(this.#info.callId, "end_call");
    try {
      this.#deps.hooks.endCall?.(this.#info, { reason: "silence" });
    } catch (error) {
      this.#log.error("end_call hook failed: {error}", { error });
    }
    this.#log.info(
      "Caller silent after {count} re-prompt(s): closing the stream",
      {
        count: this.#silence.reprompts,
      },
    );
    this.#output.hangup("silence");
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

  /** Counts failed turns; after `AGENT_MAX_FAILED_TURNS` in a row the call ends or is transferred (`AGENT_ON_FAILURE`). */
  #countFailure(reply: Reply, result: ReplyResult): void {
    const failed = result.status === "failed" || reply === this.#fallbackReply;
    if (reply === this.#fallbackReply) this.#fallbackReply = undefined;
    if (!failed) {
      if (result.status === "done") this.#failedTurns = 0;
      return;
    }
    this.#failedTurns++;
    const { maxFailedTurns, onFailure } = this.#deps.config;
    if (
      maxFailedTurns === 0 || this.#failedTurns < maxFailedTurns ||
      this.#stopped || result.action
    ) return;
    const kind = onFailure === "transfer" ? "transfer" : "end_call";
    this.#deps.outcomes?.set(this.#info.callId, kind);
    const details = { reason: "providers_failed" };
    try {
      if (kind === "end_call") this.#deps.hooks.endCall?.(this.#info, details);
      else this.#deps.hooks.transfer?.(this.#info, details);
    } catch (error) {
      this.#log.error("{kind} hook failed: {error}", { kind, error });
    }
    this.#log.warn(
      "{failedTurns} failed turns in a row: {onFailure} after the closing line",
      { failedTurns: this.#failedTurns, onFailure },
    );
    this.#output.hangup(
      kind === "transfer" ? "providers_failed_transfer" : "providers_failed",
    );
  }

  /**
   * The line for a failed turn: the fallback line, or, when this failure is
   * the last one `AGENT_MAX_FAILED_TURNS` allows, the closing line (the
   * transfer line for `AGENT_ON_FAILURE=transfer`).
   */
  #failedTurnAudio(): Promise<FallbackAudio> {
    const { maxFailedTurns, onFailure, transferText } = this.#deps.config;
    if (maxFailedTurns === 0 || this.#failedTurns + 1 < maxFailedTurns) {
      return this.#fallbackAudio();
    }
    return onFailure === "transfer"
      ? this.#lineAudio(transferText, RECORDED_LINES.transfer)
      : this.#recorded(RECORDED_LINES.closing);
  }

  /** The fallback line (`AGENT_FALLBACK_TEXT`). */
  #fallbackAudio(): Promise<FallbackAudio> {
    return this.#lineAudio(
      this.#deps.config.fallbackText,
      RECORDED_LINES.fallback,
    );
  }

  /**
   * `text` from the cache, else synthesised now (once for all calls asking
   * at the same time), else the bundled `recording` (its own words when
   * `text` is not the default), else a tone. Not aborted when the call
   * ends: the audio is for every call.
   */
  async #lineAudio(
    text: string,
    recording: RecordedLine,
  ): Promise<FallbackAudio> {
    const { config, cache } = this.#deps;
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
        this.#log.warn("Line could not be synthesised: {error}", {
          error: error instanceof Error ? error.message : String(error),
        });
        return undefined;
      }
    });
    if (pcm && pcm.length > 0) return { text, pcm };
    // Every voice is down: the line one of the others said earlier, else
    // the recording; never chimes alone.
    const voices = this.#tts instanceof FallbackTts ? this.#tts.providers : [];
    for (const voice of voices) {
      const earlier = cache.get({
        ...this.#cacheKey(text),
        provider: voice.name,
        voice: voice.voice,
      });
      if (earlier) return { text, pcm: earlier };
    }
    return this.#recorded(recording);
  }

  async #recorded(recording: RecordedLine): Promise<FallbackAudio> {
    const rate = this.#info.sampleRate as SampleRate;
    try {
      return { text: recording.text, pcm: await recording.audio.pcm(rate) };
    } catch (error) {
      this.#log.error("Bundled recording unreadable: {error}", { error });
      return { text: "", pcm: fallbackTone(this.#info.sampleRate) };
    }
  }
}
