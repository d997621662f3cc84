// deno-lint-ignore-file no-console
/**
 * Plays a WAV file to a voicebot as an Exotel call, saves what the bot said
 * and prints a report:
 *
 * ```sh
 * deno task simulate -- --url ws://127.0.0.1:3000/voicebot/ws --wav hello.wav --out reply.wav
 * ```
 *
 * Exit status: 0 when the call went through and every chunk the bot sent
 * followed Exotel's rules, 1 when the connection failed or a chunk broke
 * them, 2 for bad arguments.
 *
 * @module
 */

import { durationMs, isSampleRate, type SampleRate } from "../src/audio/pcm.ts";
import { decodeWav, encodeWav } from "../src/audio/wav.ts";
import {
  type CallerAudioEvent,
  type DtmfPress,
  simulateCall,
  type SimulatedEncoding,
  type SimulationReport,
  SimulatorOptionError,
} from "./simulator.ts";

/** The usage text `--help` prints. */
export const USAGE =
  `Usage: deno task simulate -- --url <ws-url> --wav <file.wav> [options]

Plays a WAV file to a voicebot as an Exotel Voicebot call, saves the bot's
audio and prints a report. The call runs at the WAV's rate (8000, 16000 or
24000 Hz, 16-bit mono).

Options:
  --url <url>          ws:// or wss:// voicebot endpoint (user:pass@ becomes Basic auth)
  --wav <file>         the caller's audio
  --out <file>         write every byte of audio the bot sent as a WAV
  --heard <file>       write what the caller heard (honours clear) as a WAV
  --dtmf <list>        key presses as digit@ms, e.g. 1@2000,#@3000
  --play <file@ms>     mix another WAV in at ms, e.g. interrupt.wav@2500 (repeatable)
  --token <token>      send Authorization: Bearer <token>
  --basic <user:pass>  send Authorization: Basic
  --frame-ms <ms>      caller audio per media frame, 10-1000 (default 100)
  --encoding <coding>  pcm (default) or mulaw: G.711 μ-law on the wire (8 kHz WAVs only)
  --wait-ms <ms>       after the caller's audio, wait until the bot is quiet this long (default 3000)
  --max-wait-ms <ms>   never wait longer than this after the caller's audio (default 60000)
  --call-sid <id>      the call id (default random)
  --fast               send audio as fast as possible on a virtual clock
  --help               print this text

Exit status: 0 ok, 1 connection failed or the bot broke the chunk rules,
2 bad arguments.`;

/** Parsed command line of the simulator. */
export interface SimulateArgs {
  /** The voicebot endpoint. */
  url: string;
  /** Path of the caller's WAV. */
  wav: string;
  /** Where to write the received audio. */
  out?: string;
  /** Where to write the heard audio. */
  heard?: string;
  /** Key presses. */
  dtmf: DtmfPress[];
  /** Other WAV files to mix in, with their start times. */
  play: Array<{ path: string; atMs: number }>;
  /** Bearer token. */
  token?: string;
  /** `user:pass` for Basic auth. */
  basic?: string;
  /** Media frame length in ms. */
  frameMs: number;
  /** Quiet time that ends the call, in ms. */
  waitMs: number;
  /** Longest wait for the bot, in ms. */
  maxWaitMs: number;
  /** The call id. */
  callSid?: string;
  /** Virtual clock instead of real time. */
  fast: boolean;
  /** The wire's coding. */
  encoding: SimulatedEncoding;
}

/** A command line the simulator cannot use; the CLI exits with status 2. */
export class UsageError extends Error {
  /** Creates the error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const VALUE_FLAGS = new Set([
  "url",
  "wav",
  "out",
  "heard",
  "dtmf",
  "play",
  "token",
  "basic",
  "frame-ms",
  "wait-ms",
  "max-wait-ms",
  "call-sid",
  "encoding",
]);
const DTMF_PRESS = /^([0-9*#A-D])@(\d+)$/;

/**
 * Parses the simulator's arguments; `"help"` when `--help` is among them.
 *
 * @throws {UsageError} naming the flag and what it accepts.
 */
export function parseSimulateArgs(args: string[]): SimulateArgs | "help" {
  const values = new Map<string, string[]>();
  let fast = false;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    // `deno task simulate -- …` may hand the separator through.
    if (arg === "--") continue;
    if (arg === "--help" || arg === "-h") return "help";
    if (!arg.startsWith("--")) {
      throw new UsageError(
        `Unexpected argument "${arg}": every value follows a flag (see --help)`,
      );
    }
    const equals = arg.indexOf("=");
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    if (name === "fast") {
      if (equals !== -1) {
        throw new UsageError(`Flag --fast takes no value, got "${arg}"`);
      }
      fast = true;
      continue;
    }
    if (!VALUE_FLAGS.has(name)) {
      throw new UsageError(`Unknown flag "--${name}" (see --help)`);
    }
    let value: string | undefined;
    if (equals !== -1) value = arg.slice(equals + 1);
    else if (index + 1 < args.length && !args[index + 1].startsWith("--")) {
      value = args[++index];
    }
    if (value === undefined || value === "") {
      throw new UsageError(`Missing value for --${name}`);
    }
    if (values.has(name) && name !== "play") {
      throw new UsageError(`Flag --${name} given more than once`);
    }
    values.set(name, [...values.get(name) ?? [], value]);
  }
  const one = (name: string) => values.get(name)?.[0];
  const url = one("url");
  const wav = one("wav");
  if (url === undefined) throw new UsageError("Missing --url (see --help)");
  if (!/^wss?:\/\//i.test(url)) {
    throw new UsageError(
      `Invalid --url "${url}": expected a ws:// or wss:// URL`,
    );
  }
  if (wav === undefined) throw new UsageError("Missing --wav (see --help)");
  const token = one("token");
  const basic = one("basic");
  if (token !== undefined && basic !== undefined) {
    throw new UsageError("Flags --token and --basic cannot be used together");
  }
  if (basic !== undefined && !basic.includes(":")) {
    throw new UsageError(`Invalid --basic "${basic}": expected user:pass`);
  }
  return {
    url,
    wav,
    out: one("out"),
    heard: one("heard"),
    dtmf: parseDtmf(one("dtmf")),
    play: (values.get("play") ?? []).map(parsePlay),
    token,
    basic,
    frameMs: integerFlag("frame-ms", one("frame-ms"), 100, 10, 1000),
    waitMs: integerFlag("wait-ms", one("wait-ms"), 3000, 0),
    maxWaitMs: integerFlag("max-wait-ms", one("max-wait-ms"), 60000, 0),
    callSid: one("call-sid"),
    fast,
    encoding: encodingFlag(one("encoding")),
  };
}

function encodingFlag(value: string | undefined): SimulatedEncoding {
  if (value === undefined) return "pcm";
  const coding = value.toLowerCase();
  if (coding === "pcm" || coding === "mulaw") return coding;
  throw new UsageError(
    `Invalid --encoding "${value}": expected pcm or mulaw`,
  );
}

function parseDtmf(value: string | undefined): DtmfPress[] {
  if (value === undefined) return [];
  return value.split(",").map((press) => {
    const match = DTMF_PRESS.exec(press.trim());
    if (!match) {
      throw new UsageError(
        `Invalid --dtmf "${press}": expected digit@ms pairs like 1@2000,#@3000 with digits 0-9, *, # or A-D`,
      );
    }
    return { digit: match[1], atMs: Number(match[2]) };
  });
}

function parsePlay(value: string): { path: string; atMs: number } {
  const at = value.lastIndexOf("@");
  const atMs = Number(value.slice(at + 1));
  if (at <= 0 || !/^\d+$/.test(value.slice(at + 1))) {
    throw new UsageError(
      `Invalid --play "${value}": expected file.wav@ms, e.g. interrupt.wav@2500`,
    );
  }
  return { path: value.slice(0, at), atMs };
}

function integerFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < min || number > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? `a whole number of ms, ${min} or more`
      : `a whole number of ms from ${min} to ${max}`;
    throw new UsageError(`Invalid --${name} "${value}": expected ${range}`);
  }
  return number;
}

async function readWav(flag: string, path: string) {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new UsageError(
      `Invalid --${flag} "${path}": ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
  try {
    const wav = decodeWav(bytes);
    if (!isSampleRate(wav.sampleRate)) {
      throw new Error(
        `sample rate "${wav.sampleRate}" is not 8000, 16000 or 24000`,
      );
    }
    return { sampleRate: wav.sampleRate, pcm: wav.pcm };
  } catch (error) {
    throw new UsageError(
      `Invalid --${flag} "${path}": ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}

/** Renders a report as the lines the CLI prints. */
export function formatReport(report: SimulationReport): string {
  const seconds = (bytes: number) =>
    `${(durationMs(bytes, report.sampleRate) / 1000).toFixed(2)} s`;
  const { sent, received } = report;
  const lines = [
    `call         ${report.url}`,
    `             call_sid ${report.callSid}, stream_sid ${report.streamSid}, ${report.sampleRate} Hz ${
      report.encoding === "mulaw" ? "μ-law" : "PCM"
    }`,
    `connected    ${report.connected ? "yes" : "no"}${
      report.httpStatus ? ` (HTTP ${report.httpStatus})` : ""
    }`,
    `ended        ${report.endReason}${
      report.closeCode === undefined
        ? ""
        : `, close ${report.closeCode}${
          report.closeReason ? ` "${report.closeReason}"` : ""
        }`
    }, ${(report.wallMs / 1000).toFixed(2)} s`,
    `sent         ${sent.frames} frames, ${sent.mediaFrames} media, ${sent.pcmBytes} B PCM (${
      seconds(sent.pcmBytes)
    })`,
    `received     ${received.frames} frames, ${received.mediaFrames} media, ${received.pcmBytes} B PCM (${
      seconds(received.pcmBytes)
    }), heard ${seconds(report.heardBytes)}, cleared ${
      seconds(report.clearedBytes)
    }`,
    `first audio  ${
      report.timeToFirstReplyMs === undefined
        ? "none"
        : `${
          Math.round(report.timeToFirstReplyMs)
        } ms after the first caller frame`
    }`,
    `marks        ${report.marksReceived.length} received, ${report.marksEchoed.length} echoed, ${report.marksDropped.length} dropped by clear`,
    `clears       ${report.clearsReceived}`,
    `dtmf sent    ${
      report.dtmfSent.length === 0 ? "none" : report.dtmfSent.join(" ")
    }`,
    `bad chunks   ${
      report.badChunks.length === 0 ? "none" : report.badChunks.length
    }`,
  ];
  for (const chunk of report.badChunks.slice(0, 20)) {
    lines.push(
      `             #${chunk.index}: ${chunk.bytes} B, ${
        chunk.problems.join(", ")
      }`,
    );
  }
  lines.push(
    `bad frames   ${
      report.badFrames.length === 0 ? "none" : report.badFrames.length
    }`,
  );
  for (const frame of report.badFrames.slice(0, 20)) {
    lines.push(`             ${frame.problem}: ${frame.preview}`);
  }
  if (report.error) lines.push(`error        ${report.error}`);
  return lines.join("\n");
}

/** Runs the CLI with `args` and returns its exit status. */
export async function main(args: string[]): Promise<number> {
  let parsed: SimulateArgs | "help";
  let caller: { sampleRate: SampleRate; pcm: Uint8Array };
  const events: CallerAudioEvent[] = [];
  try {
    parsed = parseSimulateArgs(args);
    if (parsed === "help") {
      console.log(USAGE);
      return 0;
    }
    caller = await readWav("wav", parsed.wav);
    for (const play of parsed.play) {
      const extra = await readWav("play", play.path);
      if (extra.sampleRate !== caller.sampleRate) {
        throw new UsageError(
          `Invalid --play "${play.path}": sample rate "${extra.sampleRate}" differs from --wav's ${caller.sampleRate}`,
        );
      }
      events.push({ atMs: play.atMs, pcm: extra.pcm });
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(error.message);
    return 2;
  }

  const headers = new Headers();
  if (parsed.token) headers.set("authorization", `Bearer ${parsed.token}`);
  if (parsed.basic) {
    headers.set(
      "authorization",
      `Basic ${new TextEncoder().encode(parsed.basic).toBase64()}`,
    );
  }
  let report: SimulationReport;
  try {
    report = await simulateCall({
      url: parsed.url,
      pcm: caller.pcm,
      sampleRate: caller.sampleRate,
      headers,
      frameMs: parsed.frameMs,
      realtime: !parsed.fast,
      dtmf: parsed.dtmf,
      events,
      waitForReplyMs: parsed.waitMs,
      maxWaitMs: parsed.maxWaitMs,
      callSid: parsed.callSid,
      encoding: parsed.encoding,
    });
  } catch (error) {
    if (!(error instanceof SimulatorOptionError)) throw error;
    console.error(error.message);
    return 2;
  }

  console.log(formatReport(report));
  for (
    const [path, pcm] of [[parsed.out, report.receivedPcm], [
      parsed.heard,
      report.heardPcm,
    ]] as const
  ) {
    if (path === undefined) continue;
    try {
      await Deno.writeFile(
        path,
        encodeWav({ sampleRate: caller.sampleRate, pcm }),
      );
    } catch (error) {
      console.error(
        `Could not write "${path}": ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
      return 1;
    }
    console.log(
      `wrote        ${path} (${
        (durationMs(pcm.length, caller.sampleRate) / 1000).toFixed(2)
      } s)`,
    );
  }
  const failures = [
    ...report.connected
      ? []
      : [`could not connect${report.error ? `: ${report.error}` : ""}`],
    ...report.badChunks.length > 0
      ? [
        `${report.badChunks.length} chunk(s) broke Exotel's ${
          report.encoding === "mulaw" ? 160 : 320
        }-byte rules`,
      ]
      : [],
  ];
  console.log(
    failures.length === 0
      ? "RESULT       OK"
      : `RESULT       FAILED: ${failures.join("; ")}`,
  );
  return failures.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
