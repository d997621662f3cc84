/**
 * What one call's agent says and how: the setup webhook asked about the
 * call (when there is one, for at most its timeout), its answer applied,
 * and the prompt and greeting templates filled with the call's values.
 * Shared by the cascaded agent and the speech-to-speech bot.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";
import type { Logger } from "../../log.ts";
import type { CallInfo } from "../bot.ts";
import type { AgentConfig } from "./config.ts";
import { fetchCallSetup } from "./setup_webhook.ts";
import { dateAndTime, renderTemplate } from "./template.ts";

/** One call's prompt, greeting, and the language and voice it asks for. */
export interface CallContext {
  /** The system prompt, templates filled. */
  prompt: string;
  /** The greeting, templates filled; empty for none. */
  greeting: string;
  /** A language the setup webhook chose, else undefined (the agent's). */
  language?: string;
  /** A voice the setup webhook chose, else undefined (the agent's). */
  voice?: string;
}

/** Options of {@linkcode resolveCallContext}. */
export interface CallContextOptions {
  /** Times the setup webhook. */
  clock: Clock;
  /** Epoch milliseconds for `{{date}}` and `{{time}}`; the clock's `epochMs()` by default. */
  wallClock?: () => number;
  /** Where the setup webhook's answer, failure, and empty placeholders are logged. */
  log: Logger;
}

/**
 * Resolves `info`'s context under `config`: `"rejected"` when the setup
 * webhook rejects the call. A failing or slow webhook leaves the defaults.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getLogger } from "@logtape/logtape";
 * import { systemClock } from "../../call/clock.ts";
 * import type { CallInfo } from "../bot.ts";
 * import { loadAgentConfig } from "./config.ts";
 *
 * const config = loadAgentConfig({
 *   DEEPGRAM_API_KEY: "dg-key",
 *   LLM_API_KEY: "sk-key",
 *   AGENT_GREETING: "Hello, you called from {{caller}}.",
 * });
 * const info: CallInfo = {
 *   callId: "CA1",
 *   streamSid: "S1",
 *   accountSid: "acme1",
 *   from: "09876543210",
 *   to: "08047491899",
 *   customParameters: {},
 *   sampleRate: 8000,
 * };
 * // No setup webhook is configured: the templates are filled at once.
 * const context = await resolveCallContext(info, config, {
 *   clock: systemClock,
 *   log: getLogger(["exovoice", "example"]),
 * });
 * assertEquals(
 *   context !== "rejected" && context.greeting,
 *   "Hello, you called from 09876543210.",
 * );
 * ```
 */
export async function resolveCallContext(
  info: CallInfo,
  config: AgentConfig,
  options: CallContextOptions,
): Promise<CallContext | "rejected"> {
  const { log } = options;
  const setup = config.setup && await fetchCallSetup(config.setup.url, {
    callId: info.callId,
    streamSid: info.streamSid,
    from: info.from,
    to: info.to,
    customParameters: info.customParameters,
    agent: config.name,
  }, { timeoutMs: config.setup.timeoutMs, clock: options.clock }).then(
    (answer) => {
      log.info("Setup webhook answered: {fields}", {
        fields: Object.keys(answer),
      });
      return answer;
    },
    (error) => {
      log.warn("Setup webhook failed, using the defaults: {message}", {
        message: error instanceof Error ? error.message : String(error),
      });
      return undefined;
    },
  );
  if (setup?.reject) {
    log.info("Setup webhook rejected the call: closing the stream");
    return "rejected";
  }
  const { date, time } = dateAndTime(
    options.wallClock?.() ?? options.clock.epochMs(),
    config.timezone,
  );
  const values = {
    caller: info.from,
    called: info.to,
    custom: info.customParameters,
    date,
    time,
    variables: { ...config.variables, ...setup?.variables },
  };
  const render = (what: string, template: string) => {
    const { text, missing } = renderTemplate(template, values);
    if (missing.length > 0) {
      log.warn("The {what} has no value for {missing}: left empty", {
        what,
        missing,
      });
    }
    return text.trim();
  };
  return {
    prompt: render("prompt", setup?.prompt ?? config.prompt),
    greeting: render("greeting", setup?.greeting ?? config.greeting),
    language: setup?.language,
    voice: setup?.voice,
  };
}
