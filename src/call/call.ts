/**
 * One Exotel call over one socket: the state machine from `connected` to
 * `stop`, the bot it runs, and its cleanup however it ends.
 *
 * I/O-free: given a {@linkcode Socket} and a {@linkcode Clock}.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import { maskPhoneNumber } from "../log.ts";
import { isSampleRate, type SampleRate } from "../audio/pcm.ts";
import type {
  Bot,
  BotFactory,
  BotPreparation,
  CallInfo,
  CallOutput,
  PreparingBotFactory,
} from "./bot_contract.ts";
import type { BotReport } from "./bot_report.ts";
import { type CallSnapshot, MAX_KEPT_DTMF_DIGITS } from "./call_snapshot.ts";
import type { CallAudioRecorder, RecordingInfo } from "./recording.ts";
import {
  type InboundEvent,
  parseAudioEncoding,
  parseInboundFrame,
  type StartInfo,
} from "../exotel/protocol.ts";
import { decodeMulaw, encodeMulaw } from "../audio/mulaw.ts";
import type { Clock } from "./clock.ts";
import { createPlayoutCounters, Player } from "./player.ts";
import type { Session, SessionRegistry } from "./registry.ts";
import type { Socket, SocketMessage } from "./socket.ts";

/** Limits and playout settings shared by every call. */
export interface CallSettings {
  /** Outbound chunk size. */
  chunkBytes: number;
  /** Audio kept queued at Exotel ahead of playback, in ms. */
  leadMs: number;
  /** Socket backlog above which the player waits. */
  maxBufferedBytes: number;
  /** Inbound text frames longer than this are skipped. */
  maxFrameBytes: number;
  /** Caller audio kept for the bot while `start` has not arrived. */
  maxPreStartBytes: number;
}

/** What the upgrade request told us about the call. */
export interface CallRequest {
  /** `call_id` | `callSid` | `callLogId` from the URL. */
  callId?: string;
  /** `stream_sid` from the URL. */
  streamSid?: string;
  /** `sample-rate` from the URL, already validated. */
  sampleRate: SampleRate;
  /** The peer's address. */
  remoteAddress: string;
  /** `agent` from the URL: which agent answers. */
  agent?: string;
}

/** Everything a call needs. */
/** What every call of a server shares: time, the registry, settings, the bot. */
export interface CallServices {
  /** Time and timers. */
  clock: Clock;
  /** Where the call registers its session. */
  registry: SessionRegistry;
  /** Limits and playout settings. */
  settings: CallSettings;
  /** The bot's name, for monitoring. */
  botName: string;
  /** Creates the bot once `start` arrives; one that prepares bots is asked to at `connected`. */
  createBot: BotFactory;
  /** Creates a recorder for both sides of the call once `start` gives its rate; none by default. */
  createRecorder?(session: Session): CallAudioRecorder | undefined;
}

/** One call's own parts, beside the shared {@linkcode CallServices}. */
export interface CallOptions extends CallServices {
  /** The call's socket. */
  socket: Socket;
  /** What the upgrade request said. */
  request: CallRequest;
}

/**
 * How long the call record waits for a bot to stop (an agent waits for its
 * speech-to-text vendor's last transcript), in ms; a bot slower than this
 * gets its record written with what it had reported as the call ended.
 */
export const BOT_STOP_WAIT_MS = 5000;

/** Normal closure code, sent when the call ends on our side or after `stop`. */
const CLOSE_NORMAL = 1000;
/** Close code for a peer whose frames are too big to process. */
const CLOSE_TOO_BIG = 1009;

const log = getLogger(["exovoice", "call"]);

/**
 * Runs one call. Construct it with an open socket; it registers its session
 * at once and removes it when the call ends, whichever way.
 */
export class Call {
  /** The call's monitoring entry. */
  readonly session: Session;
  /** Resolves with the reason once the call has ended and been cleaned up. */
  readonly ended: Promise<string>;
  /** The bot's transcript and timings, taken as the call ended. */
  report?: BotReport;
  /**
   * The bot's transcript and timings once its `stop` has settled (the
   * caller's last words, transcribed after the hang-up, included), or
   * {@linkcode Call.report} when the bot takes longer than
   * {@linkcode BOT_STOP_WAIT_MS} or fails: what the call record is built from.
   */
  finalReport: Promise<BotReport | undefined> = Promise.resolve(undefined);
  /** The recording, once its file is complete; undefined when not recording. */
  recording: Promise<RecordingInfo | undefined> = Promise.resolve(undefined);
  #options: CallOptions;
  #log: Logger;
  #player?: Player;
  #bot?: Bot;
  /** What the bot factory readied at `connected`, until `start` hands it to the bot. */
  #preparation?: BotPreparation;
  #preStart: Uint8Array[] = [];
  #preStartBytes = 0;
  #recorder?: CallAudioRecorder;
  #resolveEnded!: (reason: string) => void;
  /** Gives a media payload to the bot: chosen at `start`, decoding μ-law for μ-law calls. */
  #hearPayload: (payload: Uint8Array) => void = (pcm) => this.#hear(pcm);
  #droppedLogged = false;
  /** The bot's listener for its own audio as sent (its echo guard). */
  #sentListener: ((pcm: Uint8Array, startsAt: number) => void) | undefined;

  /** Starts handling `options.socket`. */
  constructor(options: CallOptions) {
    this.#options = options;
    const { request } = options;
    const now = options.clock.epochMs();
    this.session = {
      id: crypto.randomUUID(),
      callId: request.callId ?? "",
      streamSid: request.streamSid ?? "",
      accountSid: "",
      from: "",
      to: "",
      customParameters: {},
      sampleRate: request.sampleRate,
      encoding: "pcm",
      bot: options.botName,
      agent: request.agent || undefined,
      remoteAddress: request.remoteAddress,
      connectedAt: now,
      lastActivity: now,
      sequenceNumber: 0,
      state: "connected",
      framesIn: 0,
      bytesIn: 0,
      badFrames: {},
      audioChunksBuffered: 0,
      dtmfDigits: "",
      playout: createPlayoutCounters(),
      end: (reason, closeCode) => this.end(reason, closeCode),
    };
    this.#log = log.with({
      sessionId: this.session.id,
      callId: this.session.callId,
    });
    this.ended = new Promise((resolve) => this.#resolveEnded = resolve);
    options.registry.add(this.session);
    this.#log.info("Call connected from {remoteAddress}", {
      remoteAddress: request.remoteAddress,
    });
    options.socket.listen({
      message: (data) => this.#receive(data),
      close: (code, reason) =>
        this.end(`closed:${code}${reason ? ` ${reason}` : ""}`),
    });
  }

  /**
   * Ends the call: stops the bot and the player, closes the socket (without
   * waiting for the peer's answer, which may never come) and removes the
   * session. Safe to call more than once.
   */
  end(reason: string, closeCode = CLOSE_NORMAL): void {
    const { session } = this;
    if (session.state === "stopped") return;
    session.state = "stopped";
    session.endedAt = this.#options.clock.epochMs();
    session.endReason = reason;
    this.#player?.stop();
    this.#preStart = [];
    this.#options.socket.close(closeCode, reason.slice(0, 120));
    this.#options.registry.remove(session.id);
    this.#log.info("Call ended: {reason}", { reason, ...this.#stats() });
    if (this.#recorder) this.recording = this.#recorder.close();
    this.#callBot("report", (bot) => void (this.report = bot.report?.()));
    this.finalReport = Promise.resolve(this.report);
    this.#callBot("stop", (bot) => {
      const stopped = bot.stop();
      if (stopped instanceof Promise) {
        this.finalReport = this.#reportWhenStopped(bot, stopped);
      }
      return stopped;
    });
    this.#bot = undefined;
    this.#cancelPreparation();
    this.#resolveEnded(reason);
  }

  /** The bot's report once `stopped` settles, within {@linkcode BOT_STOP_WAIT_MS} on the call's clock. */
  async #reportWhenStopped(
    bot: Bot,
    stopped: Promise<void>,
  ): Promise<BotReport | undefined> {
    let cancel = () => {};
    const settled = await Promise.race([
      stopped.then(() => true, () => false),
      new Promise<false>((resolve) => {
        cancel = this.#options.clock.schedule(
          () => resolve(false),
          BOT_STOP_WAIT_MS,
        );
      }),
    ]);
    cancel();
    if (!settled) return this.report;
    try {
      this.report = bot.report?.() ?? this.report;
    } catch (error) {
      this.#botFailed("report", error);
    }
    return this.report;
  }

  #stats() {
    const { framesIn, bytesIn, badFrames, dtmfDigits, playout } = this.session;
    return {
      framesIn,
      bytesIn,
      badFrames,
      dtmfCount: dtmfDigits.length,
      ...playout,
    };
  }

  #receive(data: SocketMessage): void {
    const { session } = this;
    if (session.state === "stopped") return;
    session.framesIn++;
    session.lastActivity = this.#options.clock.epochMs();
    if (typeof data !== "string") {
      return this.#skip("binary", "Binary frame ignored");
    }
    if (data.length > this.#options.settings.maxFrameBytes) {
      // The runtime has already read the whole frame (up to 64 MiB) into
      // memory: Exotel's frames are a few KB, so the first oversized one ends
      // the call and drops the connection before another can be read.
      this.#skip(
        "too_large",
        `Frame of ${data.length} bytes refused: over MAX_FRAME_BYTES`,
      );
      this.end("frames_too_large", CLOSE_TOO_BIG);
      this.#options.socket.abort();
      return;
    }
    const result = parseInboundFrame(data);
    if (!result.ok) return this.#skip(result.error.code, result.error.message);
    this.#handle(result.event);
  }

  #skip(kind: string, message: string): void {
    const count = (this.session.badFrames[kind] ?? 0) + 1;
    this.session.badFrames[kind] = count;
    // Power-of-two counts only: a peer that floods bad frames must not flood the log.
    if ((count & (count - 1)) === 0) {
      // The message quotes what the peer sent: a property, never the
      // template, or its "{…}" would be filled from our own properties.
      this.#log.warn("{problem} ({kind} #{count})", {
        problem: message,
        kind,
        count,
      });
    }
  }

  #handle(event: InboundEvent): void {
    const { session } = this;
    if ("sequenceNumber" in event && event.sequenceNumber !== undefined) {
      session.sequenceNumber = event.sequenceNumber;
    }
    switch (event.event) {
      case "media":
        session.bytesIn += event.payload.length;
        if (this.#bot) this.#hearPayload(event.payload);
        else this.#holdUntilStart(event.payload);
        return;
      case "start":
        return this.#start(event.start, event.streamSid);
      case "mark": {
        const mark = this.#player?.acknowledge(event.name);
        if (mark !== undefined) {
          this.#callBot("marked", (bot) => bot.marked?.(mark));
        } else {
          this.#log.debug("Unknown mark {name} ignored", { name: event.name });
        }
        return;
      }
      case "dtmf":
        if (session.dtmfDigits.length < MAX_KEPT_DTMF_DIGITS) {
          session.dtmfDigits += event.digit;
        }
        this.#callBot("dtmf", (bot) => bot.dtmf?.(event.digit));
        return;
      case "stop":
        return this.end(`stop:${event.reason}`);
      case "clear":
        this.#log.debug("Inbound clear ignored");
        return;
      case "connected":
        return this.#prepareBot();
    }
  }

  /**
   * Exotel said `connected`: a factory that prepares bots readies this
   * call's now (the agent opens speech-to-text at the URL's rate), so it is
   * ready when `start` and the first audio come.
   */
  #prepareBot(): void {
    const factory = this.#options.createBot as
      & BotFactory
      & Partial<Pick<PreparingBotFactory, "connected">>;
    if (
      typeof factory.connected !== "function" || this.#preparation ||
      this.session.state !== "connected"
    ) return;
    const { sampleRate, agent } = this.#options.request;
    try {
      this.#preparation = factory.connected(
        agent === undefined ? { sampleRate } : { sampleRate, agent },
      );
    } catch (error) {
      // The bot is still created at `start`, unprepared.
      this.#log.warn("Bot could not get ready at connected: {error}", {
        error,
      });
    }
  }

  #cancelPreparation(): void {
    const preparation = this.#preparation;
    this.#preparation = undefined;
    try {
      preparation?.cancel();
    } catch (error) {
      this.#log.error("Bot preparation failed to cancel: {error}", { error });
    }
  }

  #holdUntilStart(pcm: Uint8Array): void {
    const room = this.#options.settings.maxPreStartBytes - this.#preStartBytes;
    if (pcm.length > room) {
      return this.#skip("media_before_start", "Media before start dropped");
    }
    this.#preStart.push(pcm);
    this.#preStartBytes += pcm.length;
    this.session.audioChunksBuffered = this.#preStart.length;
  }

  #start(start: StartInfo, streamSid: string | undefined): void {
    if (this.session.state !== "connected") {
      return this.#skip("duplicate_start", "Duplicate start ignored");
    }
    const declared = this.#adoptStart(start, streamSid);
    const mulaw = declared.encoding === "mulaw";
    if (mulaw) this.#hearPayload = (bytes) => this.#hear(decodeMulaw(bytes));
    this.#recorder = this.#options.createRecorder?.(this.session);
    const player = this.#startPlayer(mulaw);
    this.#player = player;
    if (!this.#startBot(this.#outputOf(player))) return;
    const held = this.#preStart;
    this.#preStart = [];
    this.session.audioChunksBuffered = 0;
    for (const payload of held) this.#hearPayload(payload);
  }

  /** Takes the call's identity and audio format from its `start` event, and logs it. */
  #adoptStart(
    start: StartInfo,
    streamSid: string | undefined,
  ): ReturnType<typeof parseAudioEncoding> {
    const { session } = this;
    session.state = "started";
    session.streamSid = start.streamSid || streamSid || session.streamSid ||
      session.callId;
    session.callId ||= start.callSid || session.streamSid;
    session.accountSid = start.accountSid;
    session.from = start.from;
    session.to = start.to;
    session.customParameters = start.customParameters;
    const declared = parseAudioEncoding(start.encoding);
    session.encoding = declared.encoding;
    const declaredRate = start.sampleRate ?? declared.sampleRate;
    if (declaredRate !== undefined && isSampleRate(declaredRate)) {
      session.sampleRate = declaredRate;
    } else if (declared.encoding === "mulaw") {
      // μ-law is telephone audio: 8 kHz unless the stream says otherwise.
      session.sampleRate = 8000;
    }
    this.#log = log.with({ sessionId: session.id, callId: session.callId });
    this.#logStart(start, declared);
    return declared;
  }

  /** Logs the start, and an encoding exovoice does not know. */
  #logStart(
    start: StartInfo,
    declared: ReturnType<typeof parseAudioEncoding>,
  ): void {
    if (!declared.recognised) {
      this.#log.warn(
        "Unknown media encoding {encoding}: treated as 16-bit PCM",
        { encoding: start.encoding.slice(0, 80) },
      );
    }
    this.#log.info(
      "Call started at {sampleRate} Hz ({encoding}) from {from} to {to}",
      {
        from: maskPhoneNumber(this.session.from),
        to: maskPhoneNumber(this.session.to),
        sampleRate: this.session.sampleRate,
        encoding: declared.encoding,
      },
    );
  }

  /** The player that paces the bot's audio out on this call's socket. */
  #startPlayer(mulaw: boolean): Player {
    const { session } = this;
    const { socket, settings, clock } = this.#options;
    return new Player({
      streamSid: session.streamSid,
      sampleRate: session.sampleRate,
      chunkBytes: settings.chunkBytes,
      leadMs: settings.leadMs,
      maxBufferedBytes: settings.maxBufferedBytes,
      send: (text) => socket.send(text),
      bufferedAmount: () => socket.bufferedAmount,
      clock,
      counters: session.playout,
      onChunk: (chunk, startsAt) => {
        this.#recorder?.bot(chunk);
        this.#sentListener?.(chunk, startsAt);
      },
      encode: mulaw ? encodeMulaw : undefined,
      onError: (error) => this.#botFailed("play", error),
    });
  }

  /** What the bot speaks through. */
  #outputOf(player: Player): CallOutput {
    return {
      play: (audio, options) => player.play(audio, options),
      clear: () => player.clear(),
      pause: () => player.pause(),
      resume: () => player.resume(),
      hangup: (reason = "hangup") => this.end(`bot:${reason}`),
      dropped: (bytes) => this.#dropped(bytes),
      onSent: (listener) => void (this.#sentListener = listener),
    };
  }

  /** Creates and starts the bot; false (and the call ended) when it cannot be created. */
  #startBot(output: CallOutput): boolean {
    const { session } = this;
    // The URL's `agent=` wins; else a custom parameter of that name.
    session.agent ||= session.customParameters.agent || undefined;
    const preparation = this.#preparation;
    this.#preparation = undefined;
    try {
      this.#bot = preparation
        ? preparation.create(callInfo(session), output)
        : this.#options.createBot(callInfo(session), output);
    } catch (error) {
      this.#log.error("Bot could not be created: {error}", { error });
      this.end("bot_error", 1011);
      return false;
    }
    session.report = () => this.#bot?.report?.();
    session.live = () => this.#bot?.live?.();
    this.#callBot("start", (bot) => bot.start?.());
    return true;
  }

  /** Counts bot audio dropped unplayed; logs the first drop of the call only. */
  #dropped(bytes: number): void {
    if (!(bytes > 0)) return;
    this.session.playout.droppedBytes += bytes;
    if (this.#droppedLogged) return;
    this.#droppedLogged = true;
    this.#log.warn(
      "Bot audio dropped: {bytes} bytes fell too far behind real time (logged once per call; see exovoice_playout_dropped_bytes_total)",
      { bytes },
    );
  }

  /** Gives caller audio to the bot, and to the recorder when there is one. */
  #hear(pcm: Uint8Array): void {
    this.#recorder?.caller(pcm);
    // #callBot inlined: this runs for every frame, and its closure would be
    // garbage made per frame.
    const bot = this.#bot;
    if (!bot) return;
    try {
      const result = bot.audio(pcm) as void | Promise<void>;
      if (result instanceof Promise) {
        result.catch((error) => this.#botFailed("audio", error));
      }
    } catch (error) {
      this.#botFailed("audio", error);
    }
  }

  /** Calls a bot hook, so that a bot that throws or rejects is logged, not fatal. */
  #callBot(hook: string, invoke: (bot: Bot) => void | Promise<void>): void {
    const bot = this.#bot;
    if (!bot) return;
    try {
      const result = invoke(bot);
      if (result instanceof Promise) {
        result.catch((error) => this.#botFailed(hook, error));
      }
    } catch (error) {
      this.#botFailed(hook, error);
    }
  }

  #botFailed(hook: string, error: unknown): void {
    this.#skip("bot_error", `Bot failed in ${hook}`);
    this.#log.error("Bot failed in {hook}: {error}", { hook, error });
  }
}

/** The part of a call's snapshot its bot is given. */
function callInfo(snapshot: CallSnapshot): CallInfo {
  const info: CallInfo = {
    callId: snapshot.callId,
    streamSid: snapshot.streamSid,
    accountSid: snapshot.accountSid,
    from: snapshot.from,
    to: snapshot.to,
    customParameters: snapshot.customParameters,
    sampleRate: snapshot.sampleRate,
  };
  return snapshot.agent === undefined
    ? info
    : { ...info, agent: snapshot.agent };
}
