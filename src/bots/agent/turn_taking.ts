/**
 * Turn-taking: who has the floor on the call, as a pure, clock-driven state
 * machine. It is fed what happened — the detector analysed caller audio,
 * speech-to-text reported words, a key was pressed, a bot reply started or
 * finished — and answers with what to do: pause the bot, resume it, cut it
 * off, answer a caller turn, say a silence line, hang up. It does no I/O;
 * its timers (the end-of-turn fallback, the keypad pause, the silence
 * count) run on the injected {@linkcode Clock}, so a test drives it with a
 * fake clock and plain values, no sockets.
 *
 * It composes the smaller deciders: {@linkcode TurnDetector} (when a turn is
 * over), {@linkcode BargeInGuard} (whether caller activity interrupts) and
 * {@linkcode SilenceWatch} (when the caller has been quiet too long), and
 * owns the state between them: the pause, what the greeting protects, the
 * caller voice and echo counted since a reply began, and the bot's own
 * words that may come back transcribed.
 *
 * @module
 */

import type { VadEvent } from "../../audio/vad.ts";
import type { Cancel, Clock } from "../../call/clock.ts";
import type { SpeechEvent } from "../../providers/stt/speech_to_text.ts";
import {
  BargeInGuard,
  type BargeInOptions,
  type CallerActivity,
  isBackchannel,
  words,
} from "./barge_in.ts";
import { type SilenceConfig, SilenceWatch } from "./silence.ts";
import { type CallerTurn, TurnDetector } from "./turns.ts";
import type { TurnTrigger } from "./timeline.ts";

/** Longest run of keypad keys answered as one turn; more start a turn at once. */
export const MAX_KEYPAD_TURN_DIGITS = 32;

/**
 * What the model is told when the caller presses keys.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(keypadText("42#"), "Keypad input: 42#");
 * ```
 */
export function keypadText(keys: string): string {
  return `Keypad input: ${keys}`;
}

/** The caller's voice as the detector hears it now (a `SpeechDetector` is one). */
export interface CallerVoice {
  /** Caller audio analysed so far, in ms. */
  readonly audioMs: number;
  /** Voiced caller audio that stands out from the line's background and is not the bot's echo, in ms. */
  readonly foregroundMs: number;
  /** Whether the detector is inside an utterance. */
  readonly inSpeech: boolean;
}

/** How much of the caller's audio was the bot's own voice coming back (an `EchoGuard` is one). */
export interface EchoLevel {
  /** Caller audio explained as the bot's echo so far, in ms. */
  readonly echoMs: number;
}

/** A bot reply as turn-taking sees it (a `Reply` is one). */
export interface ReplyView {
  /** True until the reply is over. */
  readonly active: boolean;
  /** Whether a barge-in or the call's end cancelled it. */
  readonly cancelled: boolean;
  /** True while any of its audio is queued, playing or awaiting its mark. */
  readonly speaking: boolean;
  /** When its first audio was handed to the player (clock ms), once it has been. */
  readonly speakingSince: number | undefined;
  /** What it has said (or will say) so far. */
  readonly said: string;
}

/** What a reply is: the greeting (`AGENT_BARGE_IN_AFTER_MS` protects its start), an answer to a turn, the fallback line, or a silence line. */
export type ReplyRole =
  | "greeting"
  | "answer"
  | "fallback"
  | "reprompt"
  | "goodbye";

/** Why a pause ended. */
export type ResumeReason = "silence" | "backchannel" | "reply_over";

/** Why the bot was cut off. */
export type InterruptReason = "speech" | "words" | "dtmf" | "turn";

/** A caller turn to answer. */
export interface TurnToAnswer {
  /** What the caller said, or the keys they pressed as {@linkcode keypadText}. */
  text: string;
  /** What ended the turn. */
  trigger: TurnTrigger;
  /** When the turn's last final transcript arrived, or the keys were taken (clock ms). */
  finalAt: number;
  /** When the caller stopped speaking (clock ms), when known; never for keys. */
  speechEndAt?: number;
  /** The language speech-to-text heard in the turn, when it reports one. */
  language?: string;
  /**
   * The guard's verdict on the turn's words: they interrupt (an `interrupt`
   * came just before when a reply was in progress, and a reply still
   * speaking when the turn is answered is cut off too), or they wait for
   * the reply to finish.
   */
  interrupts: boolean;
}

/** What to do, decided by {@linkcode TurnTaking}. */
export type TurnAction =
  /** Silence the bot, keeping its audio, until the guard can tell: caller voice over it. */
  | { type: "pause"; voicedMs: number }
  /** It was not an interruption, or the paused reply is over: go on playing. */
  | { type: "resume"; reason: ResumeReason }
  /** Cut the reply in progress off (clear its audio, abort its model and voice). */
  | { type: "interrupt"; reason: InterruptReason }
  /** Answer a caller turn: after the reply in progress (cut off, or replaced when it has said nothing yet). */
  | { type: "answer"; turn: TurnToAnswer }
  /** The caller's words were not a turn: an acknowledgement said over the bot, or the bot's own echo. */
  | { type: "not_a_turn"; reason: "backchannel" | "echo" }
  /** The caller spoke while speech-to-text was down: say the fallback line. */
  | { type: "fallback" }
  /** The caller has been silent: say the re-prompt (`count` from 1) or the goodbye. */
  | { type: "silence_line"; kind: "reprompt" | "goodbye"; count: number }
  /** The silence goodbye was heard: end the call. */
  | { type: "hang_up"; reason: "silence"; reprompts: number };

/** Barge-in settings: the guard's, plus how long the greeting cannot be cut. */
export interface TurnTakingBargeIn extends BargeInOptions {
  /** The greeting's first ms, from its first audio, that caller voice and words can neither pause nor cut; 0 off. */
  afterMs: number;
}

/** Options of a {@linkcode TurnTaking}. */
export interface TurnTakingOptions {
  /** Time and timers. */
  clock: Clock;
  /** The caller's voice, read when events arrive. */
  voice: CallerVoice;
  /** The bot's echo in the caller's audio, read when events arrive. */
  echo: EchoLevel;
  /** Barge-in settings. */
  bargeIn: TurnTakingBargeIn;
  /** Silence re-prompt settings. */
  silence: SilenceConfig;
  /** After the detector hears the caller stop, how long to wait for the vendor's end of turn, in ms. */
  turnTimeoutMs: number;
  /** Keys pressed are answered after this pause, in ms, or at `#`. */
  dtmfTimeoutMs: number;
  /** Receives every decision, in order, as it is made. */
  onAction(action: TurnAction): void;
}

/** How a reply ended, as {@linkcode TurnTaking.replySettled} needs it. */
export interface SettledReply {
  /** How it ended. */
  status: "done" | "interrupted" | "failed" | "stopped";
  /** Whether it asked to end or transfer the call. */
  action: boolean;
}

/**
 * Decides turn-taking for one call.
 *
 * @example A caller talking over the bot: pause, then cut off by a real word
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "../../call/clock.ts";
 * import { DEFAULT_BARGE_IN } from "./barge_in.ts";
 *
 * const actions: TurnAction[] = [];
 * const voice = { audioMs: 0, foregroundMs: 0, inSpeech: false };
 * const turns = new TurnTaking({
 *   clock: systemClock,
 *   voice,
 *   echo: { echoMs: 0 },
 *   bargeIn: { ...DEFAULT_BARGE_IN, afterMs: 0 },
 *   silence: { repromptS: 0, reprompts: 0 },
 *   turnTimeoutMs: 1000,
 *   dtmfTimeoutMs: 1500,
 *   onAction: (action) => actions.push(action),
 * });
 * const reply = { active: true, cancelled: false, speaking: true, speakingSince: 0, said: "Your table is booked." };
 * turns.replyStarted(reply, "answer");
 * Object.assign(voice, { audioMs: 200, foregroundMs: 120, inSpeech: true });
 * turns.analysed([{ type: "speech_start", atMs: 80 }]);
 * turns.speech({ type: "partial", text: "Wait" });
 * assertEquals(actions, [
 *   { type: "pause", voicedMs: 120 },
 *   { type: "interrupt", reason: "words" },
 * ]);
 * turns.stop();
 * ```
 */
export class TurnTaking {
  #options: TurnTakingOptions;
  #guard: BargeInGuard;
  #turns: TurnDetector;
  #silence: SilenceWatch;
  #reply: ReplyView | undefined;
  #replyRole: ReplyRole | undefined;
  /** The reply this machine cut off: it counts as cancelled before its owner says so. */
  #cut: ReplyView | undefined;
  /** The re-prompt or silence goodbye in progress. */
  #silenceLine: { reply: ReplyView; kind: "reprompt" | "goodbye" } | undefined;
  /** The bot is paused over caller speech the guard has not judged yet. */
  #paused = false;
  #stopped = false;
  /** Speech-to-text failed and has not reported anything since. */
  #sttTrouble = false;
  /** Voiced ms of the caller's current utterance that came before the reply began. */
  #voicedBaseline = 0;
  /** Whether the caller's current utterance began while a reply was active. */
  #overlapped = false;
  /** End of the caller's last voiced frame, in audio ms. */
  #lastVoicedEndMs: number | undefined;
  /** When the detector last analysed audio (clock ms), and how much audio it had then. */
  #lastAnalysedAt = 0;
  #lastAnalysedAudioMs = 0;
  /** The caller's echo-explained audio (ms) when the current reply began. */
  #echoAtReplyStart = 0;
  /** The most caller voice (ms, echo excluded) since the reply began, in the current utterance. */
  #peakVoicedMs = 0;
  /** Words of the most recent reply: its echo may come back transcribed. */
  #botWords = new Set<string>();
  /** Whether the caller heard echo during the most recent reply. */
  #echoDuringReply = false;
  /** Words of the caller's transcript said while the greeting could not be cut. */
  #protectedWords = 0;
  /** The language speech-to-text detected in the caller's latest final, when it detects one. */
  #heardLanguage: string | undefined;
  #keys = "";
  #cancelKeys: Cancel | undefined;

  /** Creates the machine; nothing is decided before the first event. */
  constructor(options: TurnTakingOptions) {
    this.#options = options;
    const { clock, bargeIn, silence, turnTimeoutMs } = options;
    this.#guard = new BargeInGuard(bargeIn);
    this.#turns = new TurnDetector({
      clock,
      timeoutMs: turnTimeoutMs,
      onTurn: (turn) => this.#onTurn(turn),
    });
    this.#silence = new SilenceWatch({
      clock,
      config: silence,
      ready: () => this.quiet,
      onReprompt: (count) =>
        this.#act({ type: "silence_line", kind: "reprompt", count }),
      onGiveUp: () =>
        this.#act({
          type: "silence_line",
          kind: "goodbye",
          count: this.#silence.reprompts,
        }),
    });
  }

  /** Whether the bot is paused over caller speech. */
  get paused(): boolean {
    return this.#paused;
  }

  /** What the caller has said in the turn so far, not answered yet. */
  get heard(): string {
    return this.#turns.text;
  }

  /** The caller's final words not answered yet (see {@linkcode TurnDetector.unanswered}); read before {@linkcode TurnTaking.stop}, which forgets them. */
  get unanswered(): { text: string; staleFinals: boolean } {
    return this.#turns.unanswered;
  }

  /** Re-prompts said since the caller last took a turn. */
  get reprompts(): number {
    return this.#silence.reprompts;
  }

  /** Whether nothing is going on: no reply, no caller speech, no words or keys waiting. */
  get quiet(): boolean {
    return !this.#stopped && !this.#reply?.active && !this.#callerSpeaking() &&
      this.#turns.text === "" && this.#keys === "";
  }

  /** A voiced frame of caller audio ended at `untilMs` of audio time. */
  voiced(untilMs: number): void {
    this.#lastVoicedEndMs = untilMs;
  }

  /** The detector analysed more caller audio; `events` are the utterances it began or ended. */
  analysed(events: readonly VadEvent[]): void {
    if (this.#stopped) return;
    const { clock, voice, bargeIn } = this.#options;
    this.#lastAnalysedAt = clock.now();
    this.#lastAnalysedAudioMs = voice.audioMs;
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
        if (!this.#silence.waiting && this.quiet) this.#silence.idle();
      }
    }
    // Only the caller's own voice stops the silence count: not babble, a
    // TV or music behind them, nor the bot's echo.
    if (this.#callerSpeaking()) this.#silence.busy();
    this.#checkBargeIn();
    if (this.#paused && this.#quietMs() >= bargeIn.resumeMs) {
      this.#resume("silence");
    }
  }

  /** Speech-to-text reported `event`. */
  speech(event: SpeechEvent): void {
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

  /** A speech-to-text session failed: speech with no transcript until it reports again deserves the fallback line. */
  speechFailed(): void {
    this.#sttTrouble = true;
  }

  /** The caller pressed `key`: it cuts the bot off, and the keys are answered after a pause or `#`. */
  key(key: string): void {
    if (this.#stopped) return;
    if (this.#options.bargeIn.enabled) this.#interrupt("dtmf");
    this.#silence.busy();
    this.#keys += key;
    this.#cancelKeys?.();
    this.#cancelKeys = undefined;
    if (key === "#" || this.#keys.length >= MAX_KEYPAD_TURN_DIGITS) {
      this.#flushKeys();
    } else {
      this.#cancelKeys = this.#options.clock.schedule(
        () => this.#flushKeys(),
        this.#options.dtmfTimeoutMs,
      );
    }
  }

  /** `reply` began; only caller speech after this moment can interrupt it. */
  replyStarted(reply: ReplyView, role: ReplyRole): void {
    this.#reply = reply;
    this.#replyRole = role;
    if (role === "reprompt" || role === "goodbye") {
      this.#silenceLine = { reply, kind: role };
    }
    this.#silence.busy();
    this.#voicedBaseline = this.#options.voice.foregroundMs;
    this.#overlapped = false;
    this.#echoAtReplyStart = this.#options.echo.echoMs;
    this.#peakVoicedMs = 0;
  }

  /**
   * `reply` is over: a pause behind it ends, and its words are remembered
   * (its echo may still be transcribed). Follow with
   * {@linkcode TurnTaking.replySettled} once the agent has handled what the
   * reply asked for.
   */
  replyFinished(reply: ReplyView, said: string): void {
    if (this.#reply === reply) {
      this.#reply = undefined;
      this.#replyRole = undefined;
      // Nothing may stay paused behind a reply that is over.
      this.#resume("reply_over");
    }
    if (this.#cut === reply) this.#cut = undefined;
    this.#botWords = new Set(words(said));
    this.#echoDuringReply = this.#options.echo.echoMs > this.#echoAtReplyStart;
  }

  /**
   * After {@linkcode TurnTaking.replyFinished} and the reply's own call
   * control: a heard silence goodbye ends the call, and an idle line starts
   * the silence count.
   */
  replySettled(reply: ReplyView, settled: SettledReply): void {
    const line = this.#silenceLine;
    if (line?.reply === reply) {
      this.#silenceLine = undefined;
      const heard = settled.status === "done" || settled.status === "failed";
      if (line.kind === "goodbye" && heard && !this.#stopped) {
        this.#act({
          type: "hang_up",
          reason: "silence",
          reprompts: this.#silence.reprompts,
        });
        return;
      }
    }
    if (!settled.action && settled.status !== "stopped" && this.quiet) {
      this.#silence.idle();
    }
  }

  /** The call is over: timers stop and nothing more is decided. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#silence.stop();
    this.#cancelKeys?.();
    this.#cancelKeys = undefined;
    this.#turns.reset();
  }

  #act(action: TurnAction): void {
    this.#options.onAction(action);
  }

  /** Whether the caller's activity since the reply began interrupts it, or pauses it until that is clear. */
  #checkBargeIn(): void {
    const reply = this.#interruptible();
    if (reply === undefined) return;
    if (this.#greetingHolds(reply)) {
      // Only what the caller does after the greeting's first moments counts.
      this.#voicedBaseline = this.#options.voice.foregroundMs;
      this.#protectedWords = words(this.#turns.text).length;
      return;
    }
    const activity = this.#callerActivity(this.#turns.text);
    const { voicedMs } = activity;
    if (this.#guard.shouldInterrupt(activity)) {
      this.#interrupt(
        voicedMs >= this.#guard.options.minSpeechMs ? "speech" : "words",
      );
    } else if (!this.#paused && this.#guard.shouldPause(voicedMs)) {
      this.#paused = true;
      this.#act({ type: "pause", voicedMs });
    }
  }

  /** The reply in progress, unless it is over or already cut off. */
  #interruptible(): ReplyView | undefined {
    const reply = this.#reply;
    if (!reply?.active || reply.cancelled || reply === this.#cut) {
      return undefined;
    }
    return reply;
  }

  /**
   * What the caller did since the reply began, as barge-in judges it:
   * voice that stands out from the line's background (steady babble, TV or
   * music never does) and is not the bot's own echo; words not said while
   * the greeting could not be cut, nor, once the bot's echo has been heard,
   * the bot's own words coming back.
   */
  #callerActivity(text: string): CallerActivity {
    const voicedMs = Math.max(
      0,
      this.#options.voice.foregroundMs - this.#voicedBaseline,
    );
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
      return this.#options.echo.echoMs > this.#echoAtReplyStart
        ? new Set(words(reply.said))
        : undefined;
    }
    return this.#echoDuringReply ? this.#botWords : undefined;
  }

  /** Whether `reply` is the greeting in its first `AGENT_BARGE_IN_AFTER_MS`. */
  #greetingHolds(reply: ReplyView): boolean {
    const { afterMs } = this.#options.bargeIn;
    if (afterMs <= 0 || reply !== this.#reply) return false;
    if (this.#replyRole !== "greeting") return false;
    const since = reply.speakingSince;
    return since === undefined || this.#options.clock.now() - since < afterMs;
  }

  /** Whether the caller's own voice is on the line now: speech that stands out from the background and is not echo. */
  #callerSpeaking(): boolean {
    const { voice } = this.#options;
    return voice.inSpeech && voice.foregroundMs > 0;
  }

  /** Caller audio since their last voiced frame, in ms. */
  #quietMs(): number {
    return this.#options.voice.audioMs - (this.#lastVoicedEndMs ?? 0);
  }

  /** When the caller stopped speaking, on the clock: the end of the last voiced frame. */
  #speechEndAt(): number | undefined {
    if (this.#lastVoicedEndMs === undefined) return undefined;
    return this.#lastAnalysedAt -
      (this.#lastAnalysedAudioMs - this.#lastVoicedEndMs);
  }

  /** The caller's words so far are only acknowledgements and they are quiet: no need to wait. */
  #resumeAfterBackchannel(): void {
    const { backchannels } = this.#options.bargeIn;
    if (
      this.#paused && !this.#options.voice.inSpeech &&
      isBackchannel(this.#turns.text, backchannels)
    ) this.#resume("backchannel");
  }

  /** Ends a pause: the bot goes on where the caller stopped hearing it. */
  #resume(reason: ResumeReason): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#act({ type: "resume", reason });
  }

  #interrupt(reason: InterruptReason): void {
    const reply = this.#interruptible();
    if (reply === undefined) return;
    this.#cut = reply;
    // The clear that cuts the reply off ends any pause in the output.
    this.#paused = false;
    this.#act({ type: "interrupt", reason });
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
      if (this.#sttTrouble && !reply?.active) this.#act({ type: "fallback" });
      return;
    }
    // An acknowledgement said over the bot is not a turn, even when its
    // transcript arrives after the bot has finished. (An empty turn above
    // leaves the flag alone: a slow transcript may still be coming.)
    const overlapped = this.#overlapped;
    this.#overlapped = false;
    const peakVoicedMs = this.#peakVoicedMs;
    this.#peakVoicedMs = 0;
    const { backchannels } = this.#options.bargeIn;
    if (overlapped && isBackchannel(text, backchannels)) {
      this.#act({ type: "not_a_turn", reason: "backchannel" });
      if (this.quiet) this.#silence.idle();
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
      this.#act({ type: "not_a_turn", reason: "echo" });
      if (this.quiet) this.#silence.idle();
      return;
    }
    this.#protectedWords = protectedWords;
    this.#answer(text, turn.trigger, turn.finalAt);
  }

  #flushKeys(): void {
    this.#cancelKeys?.();
    this.#cancelKeys = undefined;
    if (this.#stopped || this.#keys === "") return;
    const keys = this.#keys;
    this.#keys = "";
    this.#answer(keypadText(keys), "dtmf", this.#options.clock.now());
  }

  /**
   * A caller turn to answer. A reply still thinking has said nothing, so
   * the caller's newer words replace it (the agent does that); one
   * speaking is cut when the guard says the words interrupt, and otherwise
   * finishes first.
   */
  #answer(text: string, trigger: TurnTrigger, finalAt?: number): void {
    const now = this.#options.clock.now();
    const keys = trigger === "dtmf";
    const speechEndAt = keys ? undefined : this.#speechEndAt();
    const language = keys ? undefined : this.#heardLanguage;
    this.#heardLanguage = undefined;
    this.#silence.answered();
    const reply = this.#reply;
    const holding = reply !== undefined && this.#greetingHolds(reply);
    const interrupts = !holding &&
      this.#guard.shouldInterrupt(
        keys ? { voicedMs: 0, transcript: text } : this.#callerActivity(text),
      );
    this.#protectedWords = 0;
    if (interrupts) this.#interrupt("turn");
    const answer: TurnToAnswer = {
      text,
      trigger,
      finalAt: finalAt ?? now,
      interrupts,
    };
    if (speechEndAt !== undefined) answer.speechEndAt = speechEndAt;
    if (language !== undefined) answer.language = language;
    this.#act({ type: "answer", turn: answer });
  }
}
