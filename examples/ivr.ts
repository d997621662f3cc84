/**
 * A phone menu (IVR) with no model at all, to show the Bot API: it speaks a
 * menu from recorded prompts, collects DTMF digits, looks an order up,
 * answers, and hangs up.
 *
 * ```sh
 * deno task example:ivr
 * # in another terminal: 1 (hours), 2 then 12345# (an order), * (goodbye)
 * deno task simulate -- --url ws://127.0.0.1:3000/voicebot/ws \
 *   --wav tests/fixtures/audio/silence_3s_8000.wav \
 *   --dtmf 1@2000,2@8000,1@9000,2@9200,3@9400,4@9600,5@9800,#@10000,*@16000 \
 *   --heard heard.wav
 * ```
 *
 * - `1`: opening hours; `2`: an order's status (type the number, then `#`);
 *   `0`: the menu again; `*` (or `#` in the menu): goodbye and hang up.
 * - A key pressed while a prompt plays cuts it (`clear`), as callers expect.
 * - No key within `inputTimeoutMs` (default 8 s) after the menu: it asks
 *   again, then says goodbye.
 * - The call record's transcript (`GET /calls/:id`, and the call webhook)
 *   lists what was said and the keys pressed.
 *
 * Settings come from the environment as for `deno task start` (`PORT`,
 * `ADMIN_TOKEN`, `CALL_WEBHOOK_URL`, …); `BOT` and `AGENT_*` are not used.
 *
 * @module
 */

import {
  type Bot,
  type BotFactory,
  type BotReport,
  type CallOutput,
  ConfigError,
  decodeWav,
  resampleAll,
  type SampleRate,
  serve,
  type TranscriptEntry,
} from "../mod.ts";
import { PROMPT_TEXTS, type PromptName } from "./ivr/prompts.ts";

/** Each prompt as 16-bit PCM at 8 kHz, the rate the files are recorded at. */
export type Prompts = Record<PromptName, Uint8Array>;

/** The status of an order, as the example's tiny order book knows it. */
export type OrderStatus = "shipped" | "delivered";

/** Options of {@linkcode createIvrBot}. */
export interface IvrOptions {
  /** Orders by number; two demo orders by default (12345 shipped, 67890 delivered). */
  orders?: Record<string, OrderStatus>;
  /** How long to wait for a key after the menu, in ms; default 8000. */
  inputTimeoutMs?: number;
  /** Menus without an answer before goodbye; default 2. */
  maxNoInput?: number;
}

/** The rate the prompt files are recorded at. */
const PROMPT_RATE = 8000;
/** The longest order number collected. */
const MAX_ORDER_DIGITS = 10;
/** Silence between the parts of a sentence built from prompts, in ms. */
const GAP_MS = 120;

const DEMO_ORDERS: Record<string, OrderStatus> = {
  "12345": "shipped",
  "67890": "delivered",
};

/**
 * Reads the prompts (`examples/ivr/<name>.wav`, 8 kHz 16-bit mono).
 *
 * @throws {WavFormatError} for a file that is not 16-bit mono PCM at 8 kHz.
 */
export async function loadPrompts(
  dir: URL = new URL("./ivr/", import.meta.url),
): Promise<Prompts> {
  const entries = await Promise.all(
    Object.keys(PROMPT_TEXTS).map(async (name) => {
      const wav = decodeWav(await Deno.readFile(new URL(`${name}.wav`, dir)));
      if (wav.sampleRate !== PROMPT_RATE) {
        throw new Error(
          `Prompt "${name}.wav" is at ${wav.sampleRate} Hz: expected ${PROMPT_RATE}`,
        );
      }
      return [name, wav.pcm] as const;
    }),
  );
  return Object.fromEntries(entries) as Prompts;
}

/**
 * The IVR's {@linkcode BotFactory}: one menu per call, prompts resampled
 * once per call rate and shared by every call.
 *
 * @example
 * ```ts ignore
 * await serve({ bot: createIvrBot(await loadPrompts()), botName: "ivr" });
 * ```
 */
export function createIvrBot(
  prompts: Prompts,
  options: IvrOptions = {},
): BotFactory {
  const byRate = new Map<SampleRate, Prompts>();
  const atRate = (rate: SampleRate): Prompts => {
    let converted = byRate.get(rate);
    if (!converted) {
      converted = rate === PROMPT_RATE ? prompts : Object.fromEntries(
        Object.entries(prompts).map(([name, pcm]) => [
          name,
          resampleAll(pcm, { fromRate: PROMPT_RATE, toRate: rate }),
        ]),
      ) as Prompts;
      byRate.set(rate, converted);
    }
    return converted;
  };
  return (info, output) =>
    new IvrCall(output, {
      prompts: atRate(info.sampleRate),
      sampleRate: info.sampleRate,
      orders: options.orders ?? DEMO_ORDERS,
      inputTimeoutMs: options.inputTimeoutMs ?? 8000,
      maxNoInput: options.maxNoInput ?? 2,
    });
}

interface IvrCallOptions {
  prompts: Prompts;
  sampleRate: SampleRate;
  orders: Record<string, OrderStatus>;
  inputTimeoutMs: number;
  maxNoInput: number;
}

/** One call's menu: what it waits for, what it has said. */
class IvrCall implements Bot {
  #output: CallOutput;
  #options: IvrCallOptions;
  #state: "menu" | "order" | "ending" = "menu";
  #digits = "";
  #noInput = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #marks = 0;
  #startedAt = Date.now();
  #transcript: TranscriptEntry[] = [];
  #stopped = false;

  constructor(output: CallOutput, options: IvrCallOptions) {
    this.#output = output;
    this.#options = options;
  }

  start(): void {
    this.#startedAt = Date.now();
    this.#say(["welcome"]);
    this.#menu();
  }

  audio(): void {
    // An IVR listens for keys, not speech.
  }

  dtmf(digit: string): void {
    if (this.#state === "ending") return;
    clearTimeout(this.#timer);
    this.#noInput = 0;
    if (this.#state === "order") return this.#orderDigit(digit);
    this.#heard(digit);
    this.#output.clear();
    switch (digit) {
      case "1":
        this.#say(["hours"]);
        return this.#menu();
      case "2":
        this.#state = "order";
        this.#digits = "";
        return void this.#say(["order_prompt"]);
      case "0":
        return this.#menu();
      case "*":
      case "#":
        return this.#goodbye();
      default:
        this.#say(["invalid"]);
        return this.#menu();
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  report(): BotReport {
    return { transcript: this.#transcript, turns: [] };
  }

  #orderDigit(digit: string): void {
    // The first key cuts the instructions short.
    if (this.#digits === "") this.#output.clear();
    if (/^[0-9]$/.test(digit) && this.#digits.length < MAX_ORDER_DIGITS) {
      this.#digits += digit;
      return;
    }
    if (digit !== "#") return;
    const number = this.#digits;
    this.#heard(`${number}#`);
    this.#state = "menu";
    const status = this.#options.orders[number];
    const spoken = [...number].map((d) => `digit_${d}` as PromptName);
    this.#say([
      "order_intro",
      ...spoken,
      status === "shipped"
        ? "order_shipped"
        : status === "delivered"
        ? "order_delivered"
        : "order_unknown",
    ]);
    this.#menu();
  }

  /** Plays the menu, then waits for a key. */
  #menu(): void {
    void this.#say(["menu"]).then(({ status }) => {
      if (status !== "played" || this.#state !== "menu") return;
      this.#timer = setTimeout(() => {
        if (this.#stopped || this.#state !== "menu") return;
        if (++this.#noInput >= this.#options.maxNoInput) {
          return this.#goodbye();
        }
        this.#say(["no_input"]);
        this.#menu();
      }, this.#options.inputTimeoutMs);
    });
  }

  #goodbye(): void {
    this.#state = "ending";
    void this.#say(["goodbye"]).then(() => this.#output.hangup("ivr_goodbye"));
  }

  /** Plays `parts` as one utterance and writes it in the transcript. */
  #say(parts: PromptName[]): Promise<{ status: string }> {
    const { prompts, sampleRate } = this.#options;
    const gap = new Uint8Array(Math.round(sampleRate * GAP_MS / 1000) * 2);
    const pcm = concat(
      parts.flatMap((name, i) =>
        i === 0 ? [prompts[name]] : [gap, prompts[name]]
      ),
    );
    const line: TranscriptEntry = {
      role: "bot",
      text: parts.map((name) => PROMPT_TEXTS[name]).join(" "),
      atMs: Date.now() - this.#startedAt,
    };
    this.#transcript.push(line);
    const playback = this.#output.play(pcm, {
      mark: `${parts[0]}-${++this.#marks}`,
    });
    return playback.then((result) => {
      if (result.status === "cleared") line.interrupted = true;
      return result;
    });
  }

  #heard(keys: string): void {
    this.#transcript.push({
      role: "caller",
      text: `DTMF ${keys}`,
      atMs: Date.now() - this.#startedAt,
    });
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

if (import.meta.main) {
  const server = await serve({
    bot: createIvrBot(await loadPrompts()),
    botName: "ivr",
  }).catch((error) => {
    if (!(error instanceof ConfigError)) throw error;
    // deno-lint-ignore no-console
    console.error(`ivr: ${error.message}`);
    Deno.exit(1);
  });
  const stop = () => server.shutdown().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
