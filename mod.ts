/**
 * exovoice as a library: start the same server `deno task start` runs, with
 * settings, and bots given as values.
 *
 * - {@linkcode serve} starts it and returns a handle with its address and a
 *   graceful `shutdown()` (also run by `await using`).
 * - {@linkcode Bot}, {@linkcode BotFactory}, {@linkcode CallInfo} and
 *   {@linkcode CallOutput} are the contract a custom bot implements: no model
 *   needed, see `examples/ivr.ts`.
 * - {@linkcode defineAgent} declares an agent in TypeScript: the agent
 *   file's keys, with code tools ({@linkcode CodeTool}) beside webhook
 *   tools; `serve({ agent })` runs it. See `examples/order_status.ts`.
 * - {@linkcode decodeWav}, {@linkcode encodeWav} and {@linkcode resampleAll}
 *   turn prompt files into PCM at the call's rate.
 * - {@linkcode verifyWebhookSignature} checks a call webhook's
 *   `X-Exovoice-Signature` in a receiver written with Deno.
 *
 * @example A bot that beeps once and hangs up, served on a free port
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { type BotFactory, serve } from "./mod.ts";
 *
 * const beepAndHangUp: BotFactory = (info, output) => ({
 *   async start() {
 *     const tone = new Int16Array(info.sampleRate / 5).map((_, i) =>
 *       Math.round(6000 * Math.sin(2 * Math.PI * 800 * i / info.sampleRate))
 *     );
 *     await output.play(new Uint8Array(tone.buffer));
 *     output.hangup("done");
 *   },
 *   audio() {},
 *   stop() {},
 * });
 *
 * await using server = await serve({
 *   bot: beepAndHangUp,
 *   botName: "beep",
 *   readEnv: false,
 *   env: { KV_PATH: ":memory:", LOG_LEVEL: "error" },
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * const health = await (await fetch(`${server.url}/health`)).json();
 * assertEquals(health.bot, "beep");
 * ```
 *
 * @module
 */

export { type ExovoiceServer, serve, type ServeOptions } from "./src/serve.ts";
export {
  type AgentDefinition,
  defineAgent,
  type WebhookToolDefinition,
} from "./src/bots/agent/define_agent.ts";
export type {
  CodeTool,
  ToolCallInfo,
  ToolOutcome,
  ToolRunContext,
} from "./src/bots/agent/tool_runner.ts";
export type { JsonSchema } from "./src/bots/agent/json_schema.ts";
export { AgentFileError } from "./src/bots/agent/agent_file.ts";
export type {
  Audio,
  Bot,
  BotFactory,
  BotReport,
  CallInfo,
  CallOutput,
  Playback,
  PlayOptions,
} from "./src/bots/bot.ts";
export type { SampleRate } from "./src/audio/pcm.ts";
export {
  type Cancel,
  type Clock,
  repeat,
  systemClock,
} from "./src/call/clock.ts";
export type { TranscriptEntry, TurnTiming } from "./src/records/call_record.ts";
export { type Config, ConfigError, type Env } from "./src/config.ts";
export {
  decodeWav,
  encodeWav,
  type Wav,
  WavFormatError,
} from "./src/audio/wav.ts";
export {
  resampleAll,
  type ResampleAllOptions,
  ResamplerConfigError,
} from "./src/audio/resample.ts";
export {
  SIGNATURE_HEADER,
  signWebhookBody,
  verifyWebhookSignature,
} from "./src/webhooks/signature.ts";
