/**
 * `BOT=realtime`: a speech-to-speech model (OpenAI Realtime or Gemini Live)
 * on the call. The model hears the caller's audio and answers with audio;
 * this bot plays each answer through the call's player (marks, pacing),
 * clears it the moment the caller speaks over it and tells the model how
 * much was heard, runs the model's tool calls, passes keypad input as text,
 * and keeps the transcript and a per-turn latency timeline for the record.
 * When the model fails, the caller hears the fallback line and the call
 * ends or is transferred, as configured: never dead air.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import { HeldAudio } from "../../audio/held_audio.ts";
import { durationMs } from "../../audio/pcm.ts";
import { VoiceActivityDetector } from "../../audio/vad.ts";
import type { Cancel, Clock } from "../../call/clock.ts";
import type { ToolCall } from "../../providers/llm/language_model.ts";
import { ProviderError } from "../../providers/provider_error.ts";
import type {
  RealtimeEvent,
  RealtimeModel,
  RealtimeSession,
} from "../../providers/realtime/realtime_session.ts";
import type { TurnTiming } from "../bot.ts";
import type { Bot, BotReport, CallInfo, CallOutput, Playback } from "../bot.ts";
import { type AgentHooks, voiceInstructions } from "../agent/agent.ts";
import { AudioTrack } from "../agent/audio_track.ts";
import { resolveCallContext } from "../agent/call_context.ts";
import type { AgentConfig } from "../agent/config.ts";
import { heardText } from "../agent/conversation.ts";
import type { CallOutcomes } from "../agent/outcomes.ts";
import { SAY_AFTER_MS, type ToolRunner } from "../agent/tool_runner.ts";
import { END_CALL_TOOL, parseToolCall, TRANSFER_TOOL } from "../agent/tools.ts";
import { CallTranscript } from "../agent/transcript.ts";
import { FALLBACK_LINE_TEXT } from "./fallback_line.ts";

/** What every realtime bot of a server shares. */
export interface RealtimeDependencies {
  /** The speech-to-speech vendor each call opens a session with. */
  model: RealtimeModel;
  /** The agent: prompt, greeting, lines, tools, setup webhook (the cascade's settings are not used). */
  agent: AgentConfig;
  /** Its webhook and code tools, when it has any. */
  toolRunner?: ToolRunner;
  /** After a failure and the fallback line: end the call, or hand it to the flow's transfer branch. */
  onFailure: "hangup" | "transfer";
  /** Time and timers: turn timings, the mark grace, the closing line's limit. */
  clock: Clock;
  /** Epoch milliseconds for `{{date}}` and `{{time}}`; `Date.now` by default. */
  wallClock?: () => number;
  /** The player's chunk size, for the moment the first media frame goes out. */
  chunkBytes: number;
  /** Where `end_call` and `transfer` are remembered, for a Passthru applet. */
  outcomes: CallOutcomes;
  /** The recorded fallback line at the call's rate. */
  fallbackAudio(info: CallInfo): Promise<Uint8Array>;
  /** Application hooks: DTMF, end of call, transfer, tool calls, provider errors. */
  hooks: AgentHooks;
}

/** Keys one keypad entry gathers before it goes to the model as a message. */
const MAX_KEYPAD_ENTRY_DIGITS = 32;

/** Caller audio kept while the setup webhook is asked, in seconds. */
const MAX_EARLY_S = 3;

/** How long an answer's mark may be late before it counts as played anyway. */
const MARK_GRACE_MS = 5000;

/** How long a closing line may take to come from the model before the call closes anyway. */
const CLOSING_LINE_TIMEOUT_MS = 10_000;

const baseLog = getLogger(["exovoice", "realtime"]);

/** One answer of the model, as it streams into the player. */
interface Answer {
  track: AudioTrack;
  playback: Promise<Playback>;
  text: string;
  /** When the caller's turn it answers ended (clock time), if it answers one. */
  speechEndAt: number | undefined;
  firstAudioAt?: number;
  firstMediaAt?: number;
  startedAtMs: number;
  interrupted: boolean;
}

/**
 * One call's speech-to-speech bot. Create it through the factory in `mod.ts`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "../../call/clock.ts";
 * import type {
 *   RealtimeEvent,
 *   RealtimeModel,
 * } from "../../providers/realtime/realtime_session.ts";
 * import { EventQueue } from "../../providers/ws_session.ts";
 * import { loadAgentConfig } from "../agent/config.ts";
 * import { CallOutcomes } from "../agent/outcomes.ts";
 * import type { CallOutput } from "../bot.ts";
 *
 * // An in-memory model that says what it is asked to, as 100 ms of audio.
 * const model: RealtimeModel = {
 *   name: "example",
 *   reportsSpeechStart: true,
 *   open() {
 *     const events = new EventQueue<RealtimeEvent>();
 *     events.push({ type: "ready" });
 *     return {
 *       events: () => events,
 *       say(text) {
 *         events.push({ type: "audio", pcm: new Uint8Array(1600) });
 *         events.push({ type: "bot_text", text });
 *         events.push({ type: "response_done" });
 *       },
 *       sendAudio() {},
 *       sendText() {},
 *       sendToolResults() {},
 *       interrupt() {},
 *       close() {
 *         events.end();
 *         return Promise.resolve();
 *       },
 *     };
 *   },
 * };
 * // The call's output: plays each answer at once, as if Exotel had.
 * const played = Promise.withResolvers<number>();
 * const output: CallOutput = {
 *   async play(audio) {
 *     let bytes = 0;
 *     for await (const pcm of audio as AsyncIterable<Uint8Array>) bytes += pcm.length;
 *     played.resolve(bytes);
 *     return { status: "played", mark: "m1", sentBytes: bytes, heardMs: bytes / 16 };
 *   },
 *   clear() {},
 *   pause() {},
 *   resume() {},
 *   hangup() {},
 *   dropped() {},
 * };
 *
 * const env = { AGENT_GREETING: "Sunrise Clinic, hello!" };
 * const bot = new RealtimeBot({
 *   callId: "CA1",
 *   streamSid: "S1",
 *   accountSid: "acme1",
 *   from: "09876543210",
 *   to: "08047491899",
 *   customParameters: {},
 *   sampleRate: 8000,
 * }, output, {
 *   model,
 *   agent: loadAgentConfig(env, { cascade: false }),
 *   onFailure: "hangup",
 *   clock: systemClock,
 *   chunkBytes: 3200,
 *   outcomes: new CallOutcomes(),
 *   fallbackAudio: () => Promise.resolve(new Uint8Array(0)),
 *   hooks: {},
 * });
 * await bot.start(); // opens the session; the model says the greeting
 * assertEquals(await played.promise, 1600);
 * await bot.stop();
 * assertEquals(
 *   bot.report().transcript.map(({ role, text }) => `${role}: ${text}`),
 *   ["bot: Sunrise Clinic, hello!"],
 * );
 * ```
 */
export class RealtimeBot implements Bot {
  #info: CallInfo;
  #output: CallOutput;
  #deps: RealtimeDependencies;
  #log: Logger;
  #abort = new AbortController();
  #session: RealtimeSession | undefined;
  #transcript = new CallTranscript();
  #startedAt: number;
  #vad: VoiceActivityDetector;
  #audioMs = 0;
  #speechEndAt: number | undefined;
  /** The answer whose audio is streaming in. */
  #answer: Answer | undefined;
  /** Answers handed to the player and not yet played or cut, oldest first. */
  #unsettled: Answer[] = [];
  #toolCalls: ToolCall[] = [];
  /** Caller audio from before the session opened (the setup webhook's wait), newest kept. */
  #early: HeldAudio;
  #turn = 0;
  #dtmfDigits = "";
  #cancelDtmf: Cancel | undefined;
  /** The tool that closes the call, once the line it waits for was heard. */
  #closing: "end_call" | "transfer" | undefined;
  /** The answer the close waits for: the next one (a line asked for), or one playing. */
  #closeAfter: Answer | "next" | undefined;
  #cancelCloseDeadline: Cancel | undefined;
  #failed = false;
  #stopped = false;

  /** Creates the bot; nothing connects before {@linkcode RealtimeBot.start}. */
  constructor(
    info: CallInfo,
    output: CallOutput,
    deps: RealtimeDependencies,
  ) {
    this.#info = info;
    this.#output = output;
    this.#deps = deps;
    this.#log = baseLog.with({ callId: info.callId });
    this.#startedAt = deps.clock.now();
    this.#vad = new VoiceActivityDetector(info.sampleRate);
    this.#early = new HeldAudio(info.sampleRate * 2 * MAX_EARLY_S);
  }

  /**
   * Asks the setup webhook about the call (if the agent has one), opens the
   * model's session and has it say the greeting at once. Caller audio that
   * arrives meanwhile waits in the session.
   */
  async start(): Promise<void> {
    const { model, agent, toolRunner, clock, wallClock } = this.#deps;
    const context = await resolveCallContext(this.#info, agent, {
      clock,
      wallClock,
      log: this.#log,
    });
    if (this.#stopped) return;
    if (context === "rejected") {
      this.#output.hangup("rejected");
      return;
    }
    const tools = [
      ...(agent.builtinTools.endCall ? [END_CALL_TOOL] : []),
      ...(agent.builtinTools.transfer ? [TRANSFER_TOOL] : []),
      ...(toolRunner?.definitions ?? []),
    ];
    const session = model.open({
      sampleRate: this.#info.sampleRate,
      language: context.language ?? agent.language,
      instructions: `${context.prompt}\n\n${
        voiceInstructions(agent.builtinTools)
      }`,
      tools,
      signal: this.#abort.signal,
      clock,
    });
    this.#session = session;
    for (const pcm of this.#early.take()) session.sendAudio(pcm);
    if (context.greeting) session.say(context.greeting);
    this.#follow(session);
  }

  /** Caller audio goes to the model; our detector marks where turns end. */
  audio(pcm: Uint8Array): void {
    if (this.#stopped || this.#failed) return;
    if (this.#session) this.#session.sendAudio(pcm);
    else this.#early.push(pcm.slice());
    this.#audioMs += durationMs(pcm.length, this.#info.sampleRate);
    for (const event of this.#vad.push(pcm)) {
      if (event.type === "speech_start") {
        if (!this.#deps.model.reportsSpeechStart && this.#session) {
          this.#bargeIn(this.#session);
        }
      } else if (event.type === "speech_end") {
        this.#speechEndAt = this.#deps.clock.now() -
          (this.#audioMs - event.atMs);
      }
    }
  }

  /** Keys are gathered and given to the model as `Keypad input: …`. */
  dtmf(digit: string): void {
    if (this.#stopped || this.#failed) return;
    try {
      if (this.#deps.hooks.dtmf?.(digit, this.#info) === false) return;
    } catch (error) {
      this.#log.error("DTMF hook failed: {error}", { error });
    }
    if (this.#dtmfDigits.length < MAX_KEYPAD_ENTRY_DIGITS) {
      this.#dtmfDigits += digit;
    }
    this.#cancelDtmf?.();
    if (digit === "#") this.#sendDtmf();
    else {
      this.#cancelDtmf = this.#deps.clock.schedule(
        () => this.#sendDtmf(),
        this.#deps.agent.dtmfTimeoutMs,
      );
    }
  }

  /** Ends the model's session. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancelDtmf?.();
    this.#cancelCloseDeadline?.();
    this.#answer?.track.end();
    await this.#session?.close();
    this.#abort.abort();
  }

  /** The transcript and turn timings for the call record. */
  report(): BotReport {
    return {
      transcript: this.#transcript.entries(),
      turns: this.#transcript.turns(),
    };
  }

  async #follow(session: RealtimeSession): Promise<void> {
    try {
      for await (const event of session.events()) {
        if (this.#stopped) break;
        this.#handle(event, session);
      }
    } catch (error) {
      if (!this.#stopped) await this.#fail(error);
    }
  }

  #handle(event: RealtimeEvent, session: RealtimeSession): void {
    switch (event.type) {
      case "speech_started":
      case "interrupted":
        this.#bargeIn(session);
        return;
      case "caller_text":
        this.#transcript.caller(event.text, this.#sinceStart());
        return;
      case "audio":
        this.#audioOut(event.pcm);
        return;
      case "bot_text":
        if (this.#answer) this.#answer.text += event.text;
        return;
      case "tool_call":
        this.#toolCalls.push(event);
        return;
      case "response_done":
        this.#answerDone(session);
        return;
      case "resumed":
        this.#log.info("{provider} session resumed", {
          provider: this.#deps.model.name,
        });
        return;
      case "ready":
      case "speech_stopped":
        return;
    }
  }

  #audioOut(pcm: Uint8Array): void {
    const answer = this.#answer ?? this.#startAnswer();
    answer.firstAudioAt ??= this.#deps.clock.now();
    answer.track.append(pcm);
  }

  #startAnswer(): Answer {
    const { clock, chunkBytes } = this.#deps;
    const track = new AudioTrack();
    const speechEndAt = this.#speechEndAt;
    this.#speechEndAt = undefined;
    const answer: Answer = {
      track,
      text: "",
      speechEndAt,
      startedAtMs: this.#sinceStart(),
      interrupted: false,
      playback: Promise.resolve(undefined as unknown as Playback),
    };
    const reader = track.reader({
      onRead: (bytes) => {
        if (bytes >= chunkBytes) answer.firstMediaAt ??= clock.now();
      },
      onEnd: (bytes) => {
        if (bytes > 0) answer.firstMediaAt ??= clock.now();
      },
    });
    answer.playback = this.#output.play(reader, { resumable: false });
    answer.playback.then((playback) => this.#settle(answer, playback));
    this.#answer = answer;
    this.#unsettled.push(answer);
    if (this.#closeAfter === "next") this.#closeAfter = answer;
    return answer;
  }

  /** The caller spoke over the bot: silence it now, and tell the model what was heard. */
  #bargeIn(session: RealtimeSession): void {
    const answers = this.#unsettled;
    if (this.#closing || answers.every((answer) => answer.interrupted)) return;
    this.#answer?.track.end();
    this.#answer = undefined;
    for (const answer of answers) answer.interrupted = true;
    this.#output.clear();
    // The model's memory is cut at what the caller heard of its latest
    // answer (the one the vendor streamed last).
    answers.at(-1)?.playback.then((playback) =>
      session.interrupt(playback.heardMs)
    );
  }

  #answerDone(session: RealtimeSession): void {
    this.#answer?.track.end();
    this.#answer = undefined;
    const calls = this.#toolCalls.splice(0);
    if (calls.length > 0) this.#runTools(calls, session);
  }

  /** The answer was played (or cut): it goes into the transcript and the timeline. */
  #settle(answer: Answer, playback: Playback): void {
    const played = playback.status === "played";
    const totalMs = durationMs(answer.track.bytes, this.#info.sampleRate);
    const heard = heardText([{
      text: answer.text,
      played,
      heardMs: playback.heardMs,
      totalMs,
    }]);
    this.#transcript.bot(
      { said: answer.text, heard, interrupted: answer.interrupted },
      answer.startedAtMs,
    );
    if (answer.speechEndAt !== undefined) {
      this.#transcript.turn(this.#timing(answer, played));
    }
    this.#unsettled = this.#unsettled.filter((other) => other !== answer);
    if (answer === this.#closeAfter) this.#close();
  }

  #timing(answer: Answer, played: boolean): TurnTiming {
    const since = (at: number | undefined) =>
      at === undefined || answer.speechEndAt === undefined
        ? undefined
        : Math.round((at - answer.speechEndAt) * 10) / 10;
    const latenciesMs: TurnTiming["latenciesMs"] = {};
    const firstAudio = since(answer.firstAudioAt);
    const firstMedia = since(answer.firstMediaAt);
    const firstMark = played ? since(this.#deps.clock.now()) : undefined;
    if (firstAudio !== undefined) latenciesMs.tts_first_byte = firstAudio;
    if (firstMedia !== undefined) latenciesMs.first_media = firstMedia;
    if (firstMark !== undefined) latenciesMs.first_mark = firstMark;
    return { turn: ++this.#turn, latenciesMs };
  }

  /**
   * The model's tool calls of one answer: `end_call` or `transfer` closes
   * the call after its line; the others run at once through the agent's
   * tools, and their results go back together.
   */
  async #runTools(calls: ToolCall[], session: RealtimeSession): Promise<void> {
    const { agent, toolRunner, clock, hooks } = this.#deps;
    for (const call of calls) {
      const action = parseToolCall(call);
      const enabled = action.kind === "end_call"
        ? agent.builtinTools.endCall
        : action.kind === "transfer" && agent.builtinTools.transfer;
      if (action.kind === "unknown" || !enabled) continue;
      const line = action.say ??
        (action.kind === "end_call" ? agent.goodbyeText : agent.transferText);
      this.#closeAfterLine(action.kind, { line, reason: action.reason });
      return;
    }
    const running = toolRunner
      ? toolRunner.run(calls, this.#info, { signal: this.#abort.signal, clock })
      : Promise.resolve(calls.map((call) => ({
        toolCallId: call.id,
        name: call.name,
        arguments: call.arguments,
        outcome: "unknown_tool" as const,
        content: JSON.stringify({ error: `unknown tool "${call.name}"` }),
        latencyMs: 0,
      })));
    const sayLine = calls.map((call) => toolRunner?.sayLine(call.name))
      .find((line) => line !== undefined);
    let done = false;
    const cancelSay = sayLine === undefined ? undefined : clock.schedule(() => {
      if (!done && !this.#stopped) session.say(sayLine);
    }, SAY_AFTER_MS);
    const results = await running;
    done = true;
    cancelSay?.();
    if (this.#stopped) return;
    for (const result of results) {
      this.#transcript.tool({ ...result, atMs: this.#sinceStart() });
      try {
        hooks.toolCall?.(result, this.#info);
      } catch (error) {
        this.#log.error("toolCall hook failed: {error}", { error });
      }
    }
    session.sendToolResults(results.map((result) => ({
      id: result.toolCallId,
      name: result.name,
      output: result.content,
    })));
  }

  /**
   * `end_call` or `transfer`: the model says `line` (when there is one),
   * and the stream closes once the caller heard it, or what is playing now.
   */
  #closeAfterLine(
    kind: "end_call" | "transfer",
    options: { line?: string; reason?: string },
  ): void {
    this.#closing = kind;
    this.#deps.outcomes.set(this.#info.callId, kind);
    try {
      const hook = kind === "end_call"
        ? this.#deps.hooks.endCall
        : this.#deps.hooks.transfer;
      hook?.(this.#info, { reason: options.reason });
    } catch (error) {
      this.#log.error("{kind} hook failed: {error}", { kind, error });
    }
    if (options.line) {
      this.#session?.say(options.line);
      this.#closeAfter = "next";
    } else {
      this.#closeAfter = this.#unsettled.at(-1);
    }
    if (this.#closeAfter === undefined) {
      this.#close();
      return;
    }
    this.#cancelCloseDeadline = this.#deps.clock.schedule(
      () => this.#close(),
      CLOSING_LINE_TIMEOUT_MS,
    );
  }

  #close(): void {
    this.#cancelCloseDeadline?.();
    this.#cancelCloseDeadline = undefined;
    this.#closeAfter = undefined;
    if (this.#stopped) return;
    this.#output.hangup(this.#closing ?? "end_call");
  }

  #sendDtmf(): void {
    this.#cancelDtmf?.();
    this.#cancelDtmf = undefined;
    const digits = this.#dtmfDigits;
    this.#dtmfDigits = "";
    if (!digits || this.#stopped || this.#failed) return;
    this.#transcript.caller(`Keypad input: ${digits}`, this.#sinceStart());
    this.#session?.sendText(`Keypad input: ${digits}`);
  }

  /** The model is gone: the fallback line, then the configured ending. */
  async #fail(error: unknown): Promise<void> {
    this.#failed = true;
    const failure = error instanceof ProviderError
      ? error
      : new ProviderError(this.#deps.model.name, {
        kind: "protocol",
        message: `The ${this.#deps.model.name} session failed`,
        cause: error,
      });
    this.#log.warn("{provider} failed ({kind}): {message}", {
      provider: failure.provider,
      kind: failure.kind,
      message: failure.message,
    });
    try {
      this.#deps.hooks.providerError?.(failure, this.#info);
    } catch (hookError) {
      this.#log.error("providerError hook failed: {error}", {
        error: hookError,
      });
    }
    this.#answer?.track.end();
    this.#answer = undefined;
    this.#output.clear();
    const audio = await this.#deps.fallbackAudio(this.#info);
    if (this.#stopped) return;
    const kind = this.#deps.onFailure === "transfer" ? "transfer" : "end_call";
    this.#closing = kind;
    this.#deps.outcomes.set(this.#info.callId, kind);
    const playing = this.#output.play(audio);
    const waited = Promise.withResolvers<void>();
    const cancel = this.#deps.clock.schedule(
      waited.resolve,
      durationMs(audio.length, this.#info.sampleRate) + MARK_GRACE_MS,
    );
    await Promise.race([playing, waited.promise]);
    cancel();
    this.#transcript.bot(
      {
        said: FALLBACK_LINE_TEXT,
        heard: FALLBACK_LINE_TEXT,
        interrupted: false,
      },
      this.#sinceStart(),
    );
    this.#close();
  }

  #sinceStart(): number {
    return this.#deps.clock.now() - this.#startedAt;
  }
}
