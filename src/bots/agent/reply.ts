/**
 * One bot reply, start to end: the language model's streamed text cut into
 * pieces, each piece synthesised as soon as it is complete and played as its
 * audio arrives, one mark per piece; tool calls read at the end; a barge-in
 * stops all of it at once; a failing provider is replaced by the fallback
 * line. The result says what the caller actually heard.
 *
 * @module
 */

import type { Logger } from "../../log.ts";
import { durationMs } from "../../audio/pcm.ts";
import type { CallOutput, Playback } from "../bot.ts";
import type {
  ChatMessage,
  LanguageModel,
  ToolCall,
  ToolDefinition,
} from "../../providers/llm/language_model.ts";
import { ProviderError } from "../../providers/provider_error.ts";
import type { TextToSpeech } from "../../providers/tts/text_to_speech.ts";
import { AudioTrack } from "./audio_track.ts";
import { heardText } from "./conversation.ts";
import { SentenceSplitter } from "./sentences.ts";
import { synthesizeInto } from "./speech.ts";
import type { SpokenFormsMode } from "./spoken_forms.ts";
import type { TurnTimeline } from "./timeline.ts";
import { parseToolCall, type ToolAction } from "./tools.ts";
import {
  SAY_AFTER_MS,
  type ToolCallInfo,
  type ToolResult,
  type ToolRunner,
} from "./tool_runner.ts";

/** What a reply says: the model's answer, or a fixed line (the greeting). */
export type ReplyPlan =
  | {
    kind: "model";
    /** The conversation to answer. */
    messages: ChatMessage[];
    /** Tools the model may call. */
    tools: readonly ToolDefinition[];
    /** Said by `end_call` when the model said nothing. */
    goodbyeText: string;
    /** Said by `transfer` when the model said nothing. */
    transferText: string;
    /** Runs the tools besides `end_call` and `transfer`. */
    toolRunner?: ToolRunner;
    /** The call, as tools see it. */
    call?: ToolCallInfo;
    /** Fires when the call ends; tools are not cut short by a barge-in. */
    toolSignal?: AbortSignal;
  }
  | {
    kind: "say";
    /** The words. */
    text: string;
    /** Its audio at the call's rate, when already synthesised. */
    cached?: Uint8Array;
    /** Receives the whole audio once synthesised without error, for a cache. */
    onSynthesized?(pcm: Uint8Array): void;
  };

/** The fallback line's audio, or a tone with no words. */
export interface FallbackAudio {
  /** What it says; empty for a tone. */
  text: string;
  /** PCM at the call's rate. */
  pcm: Uint8Array;
}

/** What a reply needs from its call. */
export interface ReplyContext {
  /** Where the audio goes. */
  output: CallOutput;
  /** The language model. */
  llm: LanguageModel;
  /** The voice. */
  tts: TextToSpeech;
  /** The call's rate. */
  sampleRate: number;
  /** BCP 47 language. */
  language: string;
  /** `AGENT_SPOKEN_FORMS`: whether the voice gets the spoken form of each sentence. */
  spokenForms?: SpokenFormsMode;
  /** Outbound chunk size: the first media frame leaves once this much audio is ready. */
  chunkBytes: number;
  /** Prefix of this reply's mark names, unique in the call. */
  markPrefix: string;
  /** The call's logger. */
  log: Logger;
  /** Monotonic time, for the timeline. */
  now(): number;
  /** Runs `callback` after `ms`; returns a cancel function. */
  schedule(callback: () => void, ms: number): () => void;
  /** The turn's timeline, when the reply answers a caller turn. */
  timeline?: TurnTimeline;
  /** The fallback line, for when a provider fails. */
  fallback(): Promise<FallbackAudio>;
  /** Each tool call's result, as it comes in (metrics). */
  onToolResult?(result: ToolResult): void;
}

/** How a reply ended. */
export type ReplyStatus = "done" | "interrupted" | "failed" | "stopped";

/** What a reply did. */
export interface ReplyResult {
  /** How it ended. */
  status: ReplyStatus;
  /** What the caller heard, for the history. */
  heard: string;
  /** Everything the model (or the plan) said. */
  said: string;
  /** The call control the model asked for, if any (`end_call` or `transfer`). */
  action?: Extract<ToolAction, { kind: "end_call" | "transfer" }>;
  /** The provider failure that was replaced by the fallback line. */
  error?: ProviderError;
  /** The tool calls and their results, for the history, before `heard`. */
  toolMessages: ChatMessage[];
  /** Every tool call run, with when it started on the clock. */
  toolResults: (ToolResult & { at: number })[];
}

/** Model requests in one reply that may call tools; the next answers without. */
export const MAX_TOOL_ROUNDS = 5;

const NO_CALL: ToolCallInfo = {
  callId: "",
  streamSid: "",
  from: "",
  to: "",
  customParameters: {},
};

/** How long after a piece's audio was handed over its mark may take. */
const MARK_GRACE_MS = 5000;

interface Piece {
  text: string;
  mark: string;
  track: AudioTrack;
  queued: boolean;
  playback?: Playback;
  settled: Promise<void>;
}

/**
 * A reply in progress. It starts when constructed; {@linkcode Reply.done}
 * resolves once every piece it queued has been played, cleared or dropped.
 */
export class Reply {
  /** Resolves with the outcome; never rejects. */
  readonly done: Promise<ReplyResult>;
  #context: ReplyContext;
  /** Aborts the model's request: barge-in, the call's end, or a failed voice. */
  #modelAbort = new AbortController();
  /** Aborts text-to-speech: barge-in or the call's end only. */
  #voiceAbort = new AbortController();
  #pieces: Piece[] = [];
  #pendingPlays = 0;
  #ttsChain: Promise<void> = Promise.resolve();
  #cancelled: "interrupted" | "stopped" | undefined;
  #failure: ProviderError | undefined;
  #voiceFailed = false;
  #said = "";
  #action: ReplyResult["action"];
  #toolMessages: ChatMessage[] = [];
  #toolResults: ReplyResult["toolResults"] = [];
  #finished = false;
  #firstMark: string | undefined;
  #speakingSince: number | undefined;

  /** Starts the reply. */
  constructor(plan: ReplyPlan, context: ReplyContext) {
    this.#context = context;
    this.done = this.#run(plan);
  }

  /** True until the reply is over. */
  get active(): boolean {
    return !this.#finished;
  }

  /** True while any of its audio is queued, playing or awaiting its mark. */
  get speaking(): boolean {
    return this.#pendingPlays > 0;
  }

  /** When its first audio was handed to the player (clock ms), once it has been. */
  get speakingSince(): number | undefined {
    return this.#speakingSince;
  }

  /** What it has said (or will say) so far. */
  get said(): string {
    return this.#said;
  }

  /** Whether a barge-in or the call's end cancelled it. */
  get cancelled(): boolean {
    return this.#cancelled !== undefined;
  }

  /** Barge-in: clears the audio, aborts the model and the voice. */
  interrupt(): void {
    if (this.#finished || this.#cancelled) return;
    this.#cancelled = "interrupted";
    this.#modelAbort.abort();
    this.#voiceAbort.abort();
    this.#context.output.clear();
  }

  /** The call ended: aborts everything (the player has already dropped the audio). */
  stop(): void {
    if (this.#finished || this.#cancelled) return;
    this.#cancelled = "stopped";
    this.#modelAbort.abort();
    this.#voiceAbort.abort();
  }

  /** Exotel echoed mark `name`. */
  marked(name: string): void {
    if (name === this.#firstMark) {
      this.#context.timeline?.record("firstMarkEcho", this.#context.now());
    }
  }

  async #run(plan: ReplyPlan): Promise<ReplyResult> {
    try {
      if (plan.kind === "say") await this.#sayPlan(plan);
      else await this.#modelPlan(plan);
    } catch (error) {
      this.#fail(error);
    }
    await this.#ttsChain;
    if (this.#failure && !this.#cancelled) await this.#speakFallback();
    await Promise.all(this.#pieces.map((piece) => piece.settled));
    this.#finished = true;
    return this.#result();
  }

  async #sayPlan(plan: Extract<ReplyPlan, { kind: "say" }>): Promise<void> {
    this.#said = plan.text;
    if (plan.cached) {
      const piece = this.#piece(plan.text);
      piece.track.append(plan.cached);
      piece.track.end();
      this.#queue(piece);
      return;
    }
    const piece = this.#say(plan.text);
    await this.#ttsChain;
    if (
      piece && !this.#failure && !this.#cancelled &&
      piece.track.error === undefined
    ) {
      plan.onSynthesized?.(piece.track.pcm());
    }
  }

  async #modelPlan(plan: Extract<ReplyPlan, { kind: "model" }>): Promise<void> {
    let messages = plan.messages;
    for (let round = 0;; round++) {
      const turn = await this.#modelTurn(messages, plan.tools);
      if (turn === undefined) return;
      const runner = plan.toolRunner;
      const toolCalls = this.#toolCallsToRun(turn.calls, runner);
      if (toolCalls.length === 0 || runner === undefined) break;
      const answers = await this.#answerTools(turn.calls, toolCalls, {
        ...plan,
        toolRunner: runner,
      });
      if (this.#lastToolRound(round)) break;
      // Every result is in, last, before the model is asked to go on.
      messages = [
        ...messages,
        { role: "assistant", content: turn.text, toolCalls: turn.calls },
        ...answers,
      ];
    }
    this.#endModelPlan(plan);
  }

  /**
   * Sorts a model turn's tool calls: the first built-in action (end the
   * call, transfer) is kept for the reply's end; the rest go to the tool
   * runner, when there is one, and are logged and dropped when not.
   */
  #toolCallsToRun(
    calls: readonly ToolCall[],
    runner: ToolRunner | undefined,
  ): ToolCall[] {
    const toolCalls: ToolCall[] = [];
    for (const call of calls) {
      const action = parseToolCall(call);
      if (action.kind !== "unknown") {
        this.#action ??= action;
      } else if (runner && runner.definitions.length > 0) {
        // Unknown names too: the runner answers them with an error the
        // model can correct.
        toolCalls.push(call);
      } else {
        this.#context.log.warn("Model called an unknown tool {name}", {
          name: action.name,
        });
      }
    }
    return toolCalls;
  }

  /**
   * Runs a turn's tool calls and answers every call the model made (a
   * built-in one with `{"ok":true}`), keeping the round for the history.
   */
  async #answerTools(
    calls: ToolCall[],
    toolCalls: ToolCall[],
    plan: Extract<ReplyPlan, { kind: "model" }> & { toolRunner: ToolRunner },
  ): Promise<ChatMessage[]> {
    const results = await this.#runTools(toolCalls, plan);
    const answers: ChatMessage[] = calls.map((call) => {
      const result = results.find((item) => item.toolCallId === call.id);
      return {
        role: "tool",
        toolCallId: call.id,
        content: result?.content ?? JSON.stringify({ ok: true }),
      };
    });
    // In the history the reply's words come once, as heard, at its end.
    this.#toolMessages.push(
      { role: "assistant", content: "", toolCalls: calls },
      ...answers,
    );
    return answers;
  }

  /** Whether the model is not asked again after tool round `round` (counted from 0). */
  #lastToolRound(round: number): boolean {
    if (
      !this.#action && !this.#cancelled && !this.#failure &&
      round + 1 < MAX_TOOL_ROUNDS
    ) {
      return false;
    }
    if (round + 1 >= MAX_TOOL_ROUNDS && !this.#action) {
      this.#context.log.warn(
        "Model called tools {rounds} times in one reply: not asking again",
        { rounds: MAX_TOOL_ROUNDS },
      );
    }
    return true;
  }

  /**
   * After the model's last turn: says the line of the action it chose (its
   * own, or the goodbye or transfer line when it said nothing), and fails
   * a reply that would leave the caller in silence.
   */
  #endModelPlan(plan: Extract<ReplyPlan, { kind: "model" }>): void {
    if (this.#cancelled || this.#failure) return;
    const { llm } = this.#context;
    const action = this.#action;
    if (action === undefined) {
      // An empty answer would leave the caller in silence.
      if (this.#pieces.length === 0) {
        throw new ProviderError(llm.name, {
          kind: "protocol",
          message: `Model ${llm.name} answered with nothing to say`,
        });
      }
      return;
    }
    const spoke = this.#pieces.length > 0;
    const line = action.say ??
      (spoke
        ? undefined
        : action.kind === "end_call"
        ? plan.goodbyeText
        : plan.transferText);
    if (line !== undefined) {
      this.#said += `${this.#said ? " " : ""}${line}`;
      this.#say(line);
    }
  }

  /** One model request: its text is spoken as it streams; undefined when cancelled or failed. */
  async #modelTurn(
    messages: ChatMessage[],
    tools: readonly ToolDefinition[],
  ): Promise<{ text: string; calls: ToolCall[] } | undefined> {
    const { llm, timeline, now } = this.#context;
    const splitter = new SentenceSplitter();
    const calls: ToolCall[] = [];
    let text = "";
    try {
      for await (
        const event of llm.complete(messages, {
          tools: [...tools],
          signal: this.#modelAbort.signal,
        })
      ) {
        timeline?.record("firstToken", now());
        if (event.type === "text") {
          if (text === "" && this.#said !== "") this.#said += " ";
          text += event.text;
          this.#said += event.text;
          for (const piece of splitter.push(event.text)) this.#say(piece);
        } else {
          calls.push(event.call);
        }
      }
    } catch (error) {
      if (this.#cancelled || this.#failure) return undefined;
      throw error;
    }
    if (this.#cancelled || this.#failure) return undefined;
    for (const piece of splitter.flush()) this.#say(piece);
    return { text, calls };
  }

  /** Runs the turn's tool calls at once; speaks a `say` line if they take a while. */
  async #runTools(
    calls: ToolCall[],
    plan: Extract<ReplyPlan, { kind: "model" }> & { toolRunner: ToolRunner },
  ): Promise<ToolResult[]> {
    const runner = plan.toolRunner;
    const { now, schedule } = this.#context;
    const line = calls.map((call) => runner.sayLine(call.name)).find((say) =>
      say !== undefined && say.trim() !== ""
    );
    const cancelSay = line === undefined ? undefined : schedule(() => {
      if (this.#cancelled || this.#failure) return;
      this.#said += `${this.#said ? " " : ""}${line}`;
      this.#say(line);
    }, SAY_AFTER_MS);
    const startedAt = now();
    try {
      const results = await runner.run(calls, plan.call ?? NO_CALL, {
        signal: plan.toolSignal,
        clock: { now, schedule },
      });
      for (const result of results) {
        this.#toolResults.push({ ...result, at: startedAt });
        try {
          this.#context.onToolResult?.(result);
        } catch (error) {
          this.#context.log.error("Tool result hook failed: {error}", {
            error,
          });
        }
        this.#context.log.info(
          "Tool {tool} {outcome} in {latencyMs} ms",
          {
            tool: result.name,
            outcome: result.outcome,
            latencyMs: result.latencyMs,
          },
        );
      }
      return results;
    } finally {
      cancelSay?.();
    }
  }

  /** Queues `text` for synthesis after the pieces before it. */
  #say(text: string): Piece | undefined {
    if (this.#cancelled || this.#failure) return undefined;
    const piece = this.#piece(text);
    this.#ttsChain = this.#ttsChain.then(() => this.#synthesize(piece));
    return piece;
  }

  #piece(text: string): Piece {
    const piece: Piece = {
      text,
      mark: `${this.#context.markPrefix}-${this.#pieces.length + 1}`,
      track: new AudioTrack(),
      queued: false,
      settled: Promise.resolve(),
    };
    this.#pieces.push(piece);
    return piece;
  }

  async #synthesize(piece: Piece): Promise<void> {
    // After the model failed, sentences it finished are still said; after
    // the voice failed, nothing more is.
    if (this.#cancelled || this.#voiceFailed) {
      piece.track.end();
      return;
    }
    const { tts, sampleRate, language, spokenForms, timeline, now } =
      this.#context;
    try {
      await synthesizeInto(piece.track, piece.text, {
        tts,
        sampleRate,
        language,
        spokenForms,
        signal: this.#voiceAbort.signal,
        onFirstByte: () => {
          timeline?.record("firstTtsByte", now());
          this.#queue(piece);
        },
      });
    } catch (error) {
      this.#voiceFailed = true;
      this.#fail(error);
    }
  }

  /** Hands `piece` to the player; its audio streams in as it is synthesised. */
  #queue(piece: Piece): void {
    if (this.#cancelled || piece.queued) return;
    const { output, timeline, now, chunkBytes, sampleRate } = this.#context;
    piece.queued = true;
    this.#pendingPlays++;
    const first = this.#firstMark === undefined;
    if (first) {
      this.#firstMark = piece.mark;
      this.#speakingSince = now();
    }
    let settle!: () => void;
    piece.settled = new Promise((resolve) => settle = resolve);
    let cancelDeadline: (() => void) | undefined;
    const finish = (playback: Playback) => {
      if (piece.playback) return;
      piece.playback = playback;
      this.#pendingPlays--;
      cancelDeadline?.();
      settle();
    };
    const sent = (bytes: number) => {
      if (first && bytes > 0) timeline?.record("firstMediaSent", now());
    };
    const audio = piece.track.reader({
      onRead: (bytes) => {
        if (bytes >= chunkBytes) sent(bytes);
      },
      onEnd: (bytes) => {
        sent(bytes);
        // Exotel echoes every mark; should one never come, the reply (and
        // an end_call waiting on it) must not hang for the rest of the call.
        const ms = durationMs(bytes, sampleRate);
        cancelDeadline = this.#context.schedule(
          () =>
            finish({
              status: "played",
              mark: piece.mark,
              sentBytes: bytes,
              heardMs: ms,
            }),
          ms + MARK_GRACE_MS,
        );
      },
    });
    output.play(audio, { mark: piece.mark }).then(finish);
  }

  #fail(error: unknown): void {
    if (this.#cancelled || this.#failure) return;
    this.#failure = error instanceof ProviderError
      ? error
      : new ProviderError("agent", {
        kind: "protocol",
        message: String(error),
        cause: error,
      });
    // Stop the model; audio already synthesised or on its way plays on.
    this.#modelAbort.abort();
    const { provider, kind, status, message } = this.#failure;
    this.#context.log.warn(
      "Provider {provider} failed ({kind}), speaking the fallback line: {message}",
      { provider, kind, status, message },
    );
  }

  async #speakFallback(): Promise<void> {
    let fallback: FallbackAudio;
    try {
      fallback = await this.#context.fallback();
    } catch (error) {
      this.#context.log.error("No fallback audio: {error}", { error });
      return;
    }
    if (this.#cancelled) return;
    const piece = this.#piece(fallback.text);
    piece.track.append(fallback.pcm);
    piece.track.end();
    this.#queue(piece);
  }

  #result(): ReplyResult {
    const heard = heardText(
      this.#pieces.filter((piece) => piece.queued).map((piece) => ({
        text: piece.text,
        played: piece.playback?.status === "played",
        heardMs: piece.playback?.heardMs ?? 0,
        totalMs: durationMs(piece.track.bytes, this.#context.sampleRate),
      })),
    );
    const status: ReplyStatus = this.#cancelled ??
      (this.#failure ? "failed" : "done");
    const result: ReplyResult = {
      status,
      heard,
      said: this.#said,
      toolMessages: this.#toolMessages,
      toolResults: this.#toolResults,
    };
    // A goodbye the voice failed on still ends the call: the fallback was heard instead.
    if (this.#action && (status === "done" || status === "failed")) {
      result.action = this.#action;
    }
    if (this.#failure) result.error = this.#failure;
    return result;
  }
}
