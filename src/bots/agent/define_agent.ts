/**
 * Agents as TypeScript values: {@linkcode defineAgent} takes what an agent
 * file holds, under the same keys, with code tools (functions) allowed in
 * `tools` beside webhook tools. The same checks apply as to a file.
 *
 * @module
 */

import type { Env } from "../../env_values.ts";
import { type LoadAgentsOptions, loadAgentValue } from "./agent_file.ts";
import type { AgentConfig } from "./config.ts";
import type { JsonSchema } from "./json_schema.ts";
import type { CodeTool } from "./tool_runner.ts";

/** A webhook tool, as in an agent file's `tools:`. */
export interface WebhookToolDefinition {
  /** The name the model calls it by. */
  name: string;
  /** What it does, for the model. */
  description: string;
  /** JSON Schema of its arguments; an empty object schema by default. */
  parameters?: JsonSchema;
  /** The request it makes. */
  webhook: {
    /** `http(s)://` URL; `${VAR}` is taken from the environment. */
    url: string;
    /** `POST` (default, JSON body) or `GET` (query parameters). */
    method?: "GET" | "POST";
    /** Extra headers; `${VAR}` is taken from the environment. */
    headers?: Record<string, string>;
    /** Longest wait, 100 to 60 000 ms; 5000 by default. */
    timeoutMs?: number;
    /** Cap on the answer, 256 B to 1 MiB; 16 KB by default. */
    maxResponseBytes?: number;
  };
  /** Spoken if still running after ~700 ms. */
  say?: string;
  /** Argument names masked in the call record. */
  redact?: string[];
}

/** Everything an agent file holds, as a value; see the README's agent file section. */
export interface AgentDefinition {
  /** The agent's name, for `agent=` and the setup webhook; `default` by default. */
  name?: string;
  /** The system prompt (a template). */
  prompt?: string;
  /** The greeting (a template). */
  greeting?: string;
  /** BCP 47 language. */
  language?: string;
  /** The text-to-speech voice. */
  voice?: string;
  /** IANA zone of `{{date}}` and `{{time}}`. */
  timezone?: string;
  /** Said when a provider fails. */
  fallbackText?: string;
  /** Said by `end_call` when the model gave no goodbye. */
  goodbyeText?: string;
  /** Said by `transfer` when the model gave no line. */
  transferText?: string;
  /** See `AGENT_TURN_TIMEOUT_MS`. */
  turnTimeoutMs?: number;
  /** See `AGENT_DTMF_TIMEOUT_MS`. */
  dtmfTimeoutMs?: number;
  /** See `AGENT_MAX_HISTORY`. */
  maxHistory?: number;
  /** Barge-in settings. */
  bargeIn?: {
    enabled?: boolean;
    minSpeechMs?: number;
    pauseMs?: number;
    resumeMs?: number;
    minWords?: number;
    ignoreWords?: string[];
  };
  /** Vendor settings (keys stay in the environment). */
  providers?: {
    stt?: {
      provider?: "deepgram" | "sarvam";
      model?: string;
      baseUrl?: string;
      endpointingMs?: number;
      timeoutMs?: number;
    };
    llm?: {
      baseUrl?: string;
      model?: string;
      temperature?: number;
      maxTokens?: number;
      timeoutMs?: number;
      apiKeyHeader?: string;
    };
    tts?: {
      provider?: "deepgram" | "elevenlabs" | "sarvam";
      voice?: string;
      model?: string;
      baseUrl?: string;
      timeoutMs?: number;
    };
  };
  /** The setup webhook. */
  setup?: { url: string; timeoutMs?: number };
  /** Template variables and their defaults. */
  variables?: Record<string, string | number | boolean>;
  /** Which built-in tools the model gets (both by default). */
  builtinTools?: { endCall?: boolean; transfer?: boolean };
  /** Code tools and webhook tools. */
  tools?: (CodeTool | WebhookToolDefinition)[];
}

/**
 * Declares an agent in TypeScript. Returns the definition unchanged, typed;
 * `serve({ agent })` checks it as it checks an agent file.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const receptionist = defineAgent({
 *   name: "front_desk",
 *   prompt: "You are the front desk of Sunrise Clinic. Today is {{date}}.",
 *   greeting: "Sunrise Clinic, good day!",
 *   tools: [{
 *     name: "opening_hours",
 *     description: "Today's opening hours.",
 *     parameters: { type: "object", properties: {} },
 *     run: () => ({ opens: "09:00", closes: "18:00" }),
 *   }],
 * });
 * assertEquals(receptionist.tools?.length, 1);
 * ```
 */
export function defineAgent(definition: AgentDefinition): AgentDefinition {
  return definition;
}

/**
 * The configuration of `definition` merged with `env`.
 *
 * @throws {AgentFileError} listing every mistake, each under `agent "NAME"`.
 */
export function agentConfigOf(
  definition: AgentDefinition,
  env: Env,
  options: LoadAgentsOptions = {},
): AgentConfig {
  const name = definition.name ?? "default";
  const codeTools = (definition.tools ?? []).filter(isCodeTool);
  const { name: _name, tools, ...rest } = definition;
  const webhookTools = (tools ?? []).filter((tool) => !isCodeTool(tool));
  return loadAgentValue(
    { ...rest, ...(webhookTools.length > 0 ? { tools: webhookTools } : {}) },
    env,
    { ...options, name, label: `agent "${name}"`, codeTools },
  );
}

function isCodeTool(tool: CodeTool | WebhookToolDefinition): tool is CodeTool {
  return typeof (tool as CodeTool).run === "function";
}
