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
import type { Clock } from "../../call/clock.ts";
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
import { EchoGuard } from "../../audio/echo_guard.ts";
import { silenceLines } from "./silence.ts";
import type { AgentConfig } from "./config.ts";
import type { AudioCache } from "./audio_cache.ts";
import { Conversation } from "./conversation.ts";
import { Listener } from "./listener.ts";
import { CallVoice } from "./call_voice.ts";
import { LineAudio } from "./line_audio.ts";
import type { ListenerHandlers, PreparedCall } from "./prepared_call.ts";
import { CallTranscript } from "./transcript.ts";
import type { CallOutcomes } from "./outcomes.ts";
import { type AgentProviders, createProviders } from "./providers.ts";
import {
  type FallbackAudio,
  Reply,
  type ReplyPlan,
  type ReplyResult,
} from "./reply.ts";
import {
  TimelineLog,
  type TurnSummary,
  type TurnTimeline,
  turnTiming,
} from "./timeline.ts";
import { END_CALL_TOOL, TRANSFER_TOOL } from "./tools.ts";
import type { ToolDefinition } from "../../providers/llm/language_model.ts";
import type { TextToSpeech } from "../../providers/tts/text_to_speech.ts";
import type { ToolResult, ToolRunner } from "./tool_runner.ts";
import { type CallContext, resolveCallContext } from "./call_context.ts";
import {
  type ReplyRole,
  type TurnAction,
  TurnTaking,
  type TurnToAnswer,
} from "./turn_taking.ts";
import type { LanguageModel } from "../../providers/llm/language_model.ts";
import type { ProviderHealth } from "../../providers/fallback/provider_health.ts";

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
  /** What was readied for this call at `connected`: its providers' view and an open speech-to-text session. */
  prepared?: PreparedCall;
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

/** What the model may call: the built-in tools the agent keeps, then the tool runner's. */
function toolsFor(deps: AgentDependencies): ToolDefinition[] {
  const { builtinTools } = deps.config;
  return [
    ...(builtinTools.endCall ? [END_CALL_TOOL] : []),
    ...(builtinTools.transfer ? [TRANSFER_TOOL] : []),
    ...(deps.toolRunner?.definitions ?? []),
  ];
}

const LANGUAGE_NAMES = new Intl.DisplayNames(["en"], { type: "language" });

/**
 * A language's English name for the model, e.g. "Hindi" for `hi-IN`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(languageName("hi-IN"), "Hindi");
 * assertEquals(languageName("ta"), "Tamil");
 * ```
 */
export function languageName(language: string): string {
  try {
    return LANGUAGE_NAMES.of(language.split("-")[0]) ?? language;
  } catch {
    return language;
  }
}

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
  /** Decides pauses, barge-ins, caller turns and silence lines; this bot carries them out. */
  #turnTaking: TurnTaking;
  #listener: Listener;
  /** The call's view of the providers. */
  #providers: AgentProviders;
  /** Speech-to-text sessions let go of (a readied one the call could not use): closed by {@linkcode AgentBot.closed}. */
  #retired: Promise<void> = Promise.resolve();
  #conversation: Conversation;
  #timelines = new TimelineLog(10);
  #transcript = new CallTranscript();
  /** When the call started, on the clock: transcript times count from it. */
  #startedAt: number;
  #reply: Reply | undefined;
  #replyCount = 0;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Once the call is over: the caller's final words no reply answered, for the record. */
  #lastWords:
    | { texts: string[]; staleFinals: boolean; atMs: number }
    | undefined;
  #warming: Promise<void> = Promise.resolve();
  /** The call's language and voice: the agent's, the setup webhook's, or the caller's. */
  #voice: CallVoice;
  /** The call's model (over the endpoint list, when there is one). */
  #llm: LanguageModel;
  /** Turns in a row answered with the fallback line. */
  #failedTurns = 0;
  /** The fallback line said when speech-to-text was down: a failed turn too. */
  #fallbackReply: Reply | undefined;
  /** What the model may call. */
  #tools: ToolDefinition[];
  /** Fires when the call ends: tools in flight stop. */
  #callEnded = new AbortController();
  /** The setup webhook's round trip, while it runs. */
  #starting: Promise<void> = Promise.resolve();
  #markClosed!: () => void;
  /** Tells the bot's own voice coming back from the caller's. */
  #echo: EchoGuard;
  /** The fallback, closing and transfer lines' audio. */
  #lines: LineAudio;

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
    const providers = deps.prepared?.providers ?? deps.providers.forCall?.() ??
      deps.providers;
    this.#providers = providers;
    this.#startedAt = clock.now();
    this.#voice = new CallVoice({
      tts: providers.tts,
      language: config.language,
      languages: config.languages,
      voices: config.voices,
      make: (voice) => this.#makeVoice(voice),
      log: this.#log,
    });
    this.#llm = providers.llm;
    this.#tools = toolsFor(deps);
    this.#echo = new EchoGuard(info.sampleRate);
    this.#lines = new LineAudio({
      cache: deps.cache,
      sampleRate: info.sampleRate,
      texts: config,
      log: this.#log,
      voice: () => this.#voice,
    });
    output.onSent?.((pcm, startsAt) =>
      this.#echo.sent(pcm, { sentAt: clock.now(), startsAt })
    );
    this.#vad = this.#newDetector();
    this.#turnTaking = this.#newTurnTaking();
    // Speech-to-text opened at `connected` serves when it speaks the
    // call's rate; otherwise it closes and the call opens its own.
    const prepared = deps.prepared;
    const listener = prepared?.take(info.sampleRate, this.#listenerHandlers());
    if (prepared && !listener) this.#retired = prepared.cancel();
    this.#listener = listener ?? this.#newListener(config.language);
    this.#conversation = new Conversation(
      `${config.prompt}\n\n${voiceInstructions(config.builtinTools)}`,
      { maxMessages: config.maxHistory },
    );
  }

  /** The call's voice-activity detector, feeding {@linkcode TurnTaking}; it skips the bot's own voice coming back. */
  #newDetector(): SpeechDetector {
    const detectors = this.#deps.detectors ?? energyDetector;
    return detectors(this.#info.sampleRate, {
      isEcho: (atMs, durationMs) => this.#echo.isEcho(atMs, durationMs),
      onFrame: (frame) => {
        if (frame.isSpeech) {
          this.#turnTaking.voiced(frame.atMs + frame.durationMs);
          this.#listener.voiced();
        } else this.#listener.unvoiced();
      },
      onAnalysed: (events) => this.#turnTaking.analysed(events),
    });
  }

  /** Turn-taking over the call's detector, acting through {@linkcode AgentBot.#act}. */
  #newTurnTaking(): TurnTaking {
    const { config, clock } = this.#deps;
    return new TurnTaking({
      clock,
      voice: this.#vad,
      echo: this.#echo,
      bargeIn: config.bargeIn,
      silence: config.silence,
      turnTimeoutMs: config.turnTimeoutMs,
      dtmfTimeoutMs: config.dtmfTimeoutMs,
      onAction: (action) => this.#act(action),
    });
  }

  #listenerHandlers(): ListenerHandlers {
    return {
      onEvent: (event) => this.#onSpeech(event),
      onError: (error) => this.#onListenerError(error),
    };
  }

  #newListener(language: string): Listener {
    const providers = this.#providers;
    return new Listener({
      stt: providers.stt,
      callRate: this.#info.sampleRate,
      sttRate: providers.sttSampleRate(this.#info.sampleRate),
      language,
      languages: this.#deps.config.languages,
      clock: this.#deps.clock,
      ...this.#listenerHandlers(),
    });
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
    const activity = this.#turnTaking.paused
      ? "paused"
      : reply?.active && !reply.cancelled
      ? reply.speaking ? "speaking" : "thinking"
      : "listening";
    return { activity, partial: this.#turnTaking.heard };
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
    this.#voice.begin(context);
    if (context.language) {
      if (
        this.#listener.started && this.#listener.language !== context.language
      ) {
        // The session opened at `connected` listens for the agent's
        // language; the setup webhook chose another.
        const readied = this.#listener;
        this.#retired = Promise.all([this.#retired, readied.close()])
          .then(() => {});
        this.#listener = this.#newListener(context.language);
      } else this.#listener.language = context.language;
    }
    this.#listener.start();
    this.#conversation.systemPrompt = `${context.prompt}\n\n${
      voiceInstructions(config.builtinTools)
    }`;
    const { greeting } = context;
    // A greeting made for one caller is not worth a place in the cache.
    const key = greeting === config.greeting
      ? this.#lines.key(greeting)
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
    }, { role: "greeting" });
    if (cached) this.#warmFallback();
  }

  /** Caller audio: to speech-to-text and the voice-activity detector. */
  audio(pcm: Uint8Array): void {
    if (this.#stopped) return;
    this.#listener.push(pcm);
    this.#echo.heard(pcm, this.#deps.clock.now());
    this.#vad.push(pcm);
  }

  /** A keypad digit: interrupts the bot, and is sent to the model after a pause or `#`. */
  dtmf(digit: string): void {
    if (this.#stopped) return;
    try {
      if (this.#deps.hooks.dtmf?.(digit, this.#info) === false) return;
    } catch (error) {
      this.#log.error("DTMF hook failed: {error}", { error });
    }
    this.#turnTaking.key(digit);
  }

  /** Exotel echoed a mark. */
  marked(name: string): void {
    this.#reply?.marked(name);
  }

  /** The call is over: aborts everything and closes speech-to-text. */
  stop(): Promise<void> {
    if (!this.#stopped) {
      const { text, staleFinals } = this.#turnTaking.unanswered;
      this.#lastWords = {
        texts: text === "" ? [] : [text],
        staleFinals,
        atMs: this.#sinceStart(),
      };
      this.#stopped = true;
      this.#turnTaking.stop();
      this.#output.onSent?.(undefined);
      this.#callEnded.abort();
      this.#reply?.stop();
      const reply = this.#reply?.done;
      Promise.all([
        this.#starting,
        // Bounded by the adapter's wait for the vendor's last finals.
        this.#listener.close().then(() => this.#recordLastWords()),
        this.#retired,
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
    if (!this.#stopped) {
      this.#turnTaking.speech(event);
      return;
    }
    // The call is over: what the vendor still transcribes goes to the
    // record only; no model turn, nothing said.
    const lastWords = this.#lastWords;
    if (event.type !== "final" || !lastWords || lastWords.staleFinals) return;
    const text = event.text.trim();
    if (text !== "") lastWords.texts.push(text);
  }

  /** The caller's words the call ended before answering, as their last line. */
  #recordLastWords(): void {
    const lastWords = this.#lastWords;
    if (!lastWords || lastWords.texts.length === 0) return;
    this.#transcript.caller(lastWords.texts.join(" "), lastWords.atMs);
    lastWords.texts = [];
  }

  #onListenerError(error: ProviderError): void {
    this.#turnTaking.speechFailed();
    this.#deps.hooks.providerError?.(error, this.#info);
    const { provider, kind, status, message } = error;
    this.#log.warn(
      "Speech-to-text {provider} failed ({kind}), reconnecting: {message}",
      { provider, kind, status, message, failures: this.#listener.failures },
    );
  }

  /** Carries out what turn-taking decided. */
  #act(action: TurnAction): void {
    switch (action.type) {
      case "pause":
        this.#log.debug("Caller spoke over the bot: paused", {
          voicedMs: action.voicedMs,
        });
        this.#output.pause();
        return;
      case "resume":
        if (action.reason !== "reply_over") {
          this.#log.debug("Not an interruption ({reason}): resumed", {
            reason: action.reason,
          });
        }
        this.#output.resume();
        return;
      case "interrupt": {
        const reply = this.#reply;
        if (reply === undefined) return;
        this.#log.info("Caller interrupted the bot ({reason})", {
          reason: action.reason,
          speaking: reply.speaking,
        });
        reply.interrupt();
        return;
      }
      case "answer":
        this.#respond(action.turn);
        return;
      case "not_a_turn":
        if (action.reason === "backchannel") {
          this.#log.debug("Backchannel while the bot spoke: not a turn");
        } else {
          this.#log.info("The bot's own echo was transcribed: not a turn");
        }
        return;
      case "fallback":
        this.#log.warn("Caller spoke while speech-to-text was down");
        this.#enqueue(() => this.#sayFallback());
        return;
      case "silence_line": {
        const { kind } = action;
        this.#enqueue(() => this.#saySilenceLine(kind));
        return;
      }
      case "hang_up":
        this.#hangUpOnSilence(action.reprompts);
        return;
    }
  }

  /**
   * Answers a caller turn. A reply still thinking has said nothing, so the
   * caller's newer words replace it; one speaking was cut when turn-taking
   * said the words interrupt, and otherwise finishes first.
   */
  #respond(turn: TurnToAnswer): void {
    this.#enqueue(async () => {
      const current = this.#reply;
      if (current?.active) {
        if (turn.interrupts || !current.speaking) current.interrupt();
        await current.done;
      }
      if (this.#stopped) {
        // Heard, but the call ended before a reply: kept for the record.
        this.#transcript.caller(turn.text, this.#sinceStart());
        return;
      }
      if (turn.language !== undefined) this.#switchLanguage(turn.language);
      this.#conversation.addUser(turn.text);
      this.#transcript.caller(turn.text, this.#sinceStart());
      const timeline = this.#timelines.begin(
        turn.trigger,
        this.#deps.clock.epochMs(),
      );
      if (turn.speechEndAt !== undefined) {
        timeline.record("speechEnd", turn.speechEndAt);
      }
      timeline.record("finalTranscript", turn.finalAt);
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
      }, { role: "answer", timeline });
    });
  }

  /**
   * The caller spoke another of the agent's languages: the model is told,
   * and replies are spoken in that language, with its voice.
   */
  #switchLanguage(language: string): void {
    if (!this.#voice.switchTo(language)) return;
    const name = languageName(language);
    this.#conversation.note =
      `The caller is now speaking ${name} (${language}); answer in ${name}.`;
  }

  /** A text-to-speech with `voice`: the application's, else made from the configuration; throws when the vendor cannot. */
  #makeVoice(voice: string): TextToSpeech {
    const { config } = this.#deps;
    return this.#deps.voiceFor?.(voice) ??
      createProviders({ ...config, tts: { ...config.tts, voice } }, {
        health: this.#deps.health,
        clock: this.#deps.clock,
      }).tts;
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
    }, { role: "fallback" });
  }

  #startReply(
    plan: ReplyPlan,
    options: { role: ReplyRole; timeline?: TurnTimeline },
  ): Reply {
    const { role, timeline } = options;
    const { clock, chunkBytes } = this.#deps;
    const id = ++this.#replyCount;
    const reply = new Reply(plan, {
      output: this.#output,
      llm: this.#llm,
      tts: this.#voice.tts,
      sampleRate: this.#info.sampleRate,
      language: this.#voice.language,
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
    this.#turnTaking.replyStarted(reply, role);
    const startedAt = this.#sinceStart();
    reply.done.then((result) =>
      this.#replyDone(reply, result, { startedAt, timeline })
    );
    return reply;
  }

  #replyDone(
    reply: Reply,
    result: ReplyResult,
    started: { startedAt: number; timeline: TurnTimeline | undefined },
  ): void {
    const { startedAt, timeline } = started;
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
    if (this.#reply === reply) this.#reply = undefined;
    this.#turnTaking.replyFinished(reply, result.said);
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
    this.#turnTaking.replySettled(reply, {
      status: result.status,
      action: result.action !== undefined,
    });
  }

  /** Says the re-prompt or the silence goodbye: fixed lines, their audio cached for every call. */
  #saySilenceLine(kind: "reprompt" | "goodbye"): void {
    if (!this.#turnTaking.quiet) return;
    const { config, cache } = this.#deps;
    const lines = silenceLines(config.silence, this.#voice.language);
    const text = kind === "reprompt" ? lines.reprompt : lines.goodbye;
    this.#log.info("Caller silent for {seconds} s: {kind} ({count})", {
      seconds: config.silence.repromptS,
      kind,
      count: this.#turnTaking.reprompts,
    });
    const key = this.#lines.key(text);
    this.#startReply({
      kind: "say",
      text,
      cached: cache.get(key),
      onSynthesized: (pcm) => cache.set(key, pcm),
    }, { role: kind });
  }

  /** The silence goodbye was heard: the call ends, as an `end_call` would end it. */
  #hangUpOnSilence(reprompts: number): void {
    this.#deps.outcomes?.set(this.#info.callId, "end_call");
    try {
      this.#deps.hooks.endCall?.(this.#info, { reason: "silence" });
    } catch (error) {
      this.#log.error("end_call hook failed: {error}", { error });
    }
    this.#log.info(
      "Caller silent after {count} re-prompt(s): closing the stream",
      { count: reprompts },
    );
    this.#output.hangup("silence");
  }

  /** Milliseconds since the call started. */
  #sinceStart(): number {
    return this.#deps.clock.now() - this.#startedAt;
  }

  /** Synthesises the fallback line in the background, so a later failure has it ready. */
  #warmFallback(): void {
    if (this.#stopped) return;
    const key = this.#lines.key(this.#deps.config.fallbackText);
    if (this.#deps.cache.get(key)) return;
    this.#warming = this.#warming.then(() => this.#lines.fallback()).then(
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

  /** The line for a failed turn: the fallback line, or the closing (or transfer) line for the last one allowed. */
  #failedTurnAudio(): Promise<FallbackAudio> {
    return this.#lines.forFailedTurn(this.#failedTurns);
  }
}
