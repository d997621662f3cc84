/**
 * The contract between a call and the bot that talks on it, for bot
 * authors: a bot is created per call by a {@linkcode BotFactory}, given the
 * call's {@linkcode CallInfo} and a {@linkcode CallOutput}, and answers with
 * a {@linkcode Bot}.
 *
 * The types are defined by the call layer that runs bots
 * (`call/bot_contract.ts`, `call/playback.ts`, `call/bot_report.ts`), so
 * that the call never imports from the bots above it; they are gathered
 * here for the bots.
 *
 * @module
 */

export type {
  Bot,
  BotFactory,
  BotPreparation,
  CallInfo,
  CallOutput,
  ConnectedCall,
  PreparingBotFactory,
} from "../call/bot_contract.ts";
export type { Audio, Playback, PlayOptions } from "../call/playback.ts";
export {
  type BotLiveState,
  type BotReport,
  LATENCY_STAGES,
  type LatencyStage,
  type TranscriptEntry,
  type TurnTiming,
} from "../call/bot_report.ts";
