/**
 * The setup webhook (`AGENT_SETUP_URL`): at `start` the call's details are
 * POSTed, and the answer may fill the prompt's variables, override the
 * prompt, greeting, language or voice, or reject the call. It has
 * `AGENT_SETUP_TIMEOUT_MS` to answer; after that, or on any error, the
 * defaults apply and the call goes on.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";

/** What the setup webhook receives, as `{"call": …}`. */
export interface SetupCall {
  /** Our id for the call. */
  callId: string;
  /** Exotel's stream id. */
  streamSid: string;
  /** The caller's number. */
  from: string;
  /** The number called. */
  to: string;
  /** Exotel's custom parameters. */
  customParameters: Record<string, string>;
  /** The agent answering (its file name without extension, or `default`). */
  agent: string;
}

/** What the setup webhook may answer; every field optional. */
export interface CallSetup {
  /** Values for the templates' declared variables. */
  variables?: Record<string, string>;
  /** Replaces the prompt (still a template). */
  prompt?: string;
  /** Replaces the greeting (still a template). */
  greeting?: string;
  /** Replaces the language (BCP 47). */
  language?: string;
  /** Replaces the voice. */
  voice?: string;
  /** Ends the stream without speaking. */
  reject?: boolean;
}

/** The setup webhook failed; the call goes on with the defaults. */
export class SetupWebhookError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SetupWebhookError";
  }
}

/** How to reach the setup webhook. */
export interface SetupWebhookOptions {
  /** Longest wait for the whole answer. */
  timeoutMs: number;
  /** Times the wait. */
  clock: Clock;
  /** Answers longer than this are refused; 64 KB by default. */
  maxBytes?: number;
}

const STRING_FIELDS = ["prompt", "greeting", "language", "voice"] as const;

/**
 * Asks the setup webhook about `call`.
 *
 * @throws {SetupWebhookError} on a timeout, a non-2xx status, or an answer
 * that is not the documented JSON.
 */
export async function fetchCallSetup(
  url: string,
  call: SetupCall,
  options: SetupWebhookOptions,
): Promise<CallSetup> {
  const abort = new AbortController();
  let timedOut = false;
  const cancel = options.clock.schedule(() => {
    timedOut = true;
    abort.abort();
  }, options.timeoutMs);
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
      },
      body: JSON.stringify({ call }),
      signal: abort.signal,
    });
    const text = await response.text();
    if (!response.ok) {
      throw new SetupWebhookError(
        `Setup webhook answered HTTP ${response.status}: "${
          text.slice(0, 200)
        }"`,
      );
    }
    if (text.length > (options.maxBytes ?? 65_536)) {
      throw new SetupWebhookError(
        `Setup webhook answer too large (${text.length} characters)`,
      );
    }
    let body: unknown;
    try {
      body = text.trim() === "" ? {} : JSON.parse(text);
    } catch {
      throw new SetupWebhookError(
        `Setup webhook answer is not JSON: "${text.slice(0, 200)}"`,
      );
    }
    return parseCallSetup(body);
  } catch (error) {
    if (error instanceof SetupWebhookError) throw error;
    if (timedOut) {
      throw new SetupWebhookError(
        `Setup webhook did not answer within ${options.timeoutMs} ms`,
      );
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new SetupWebhookError(`Setup webhook request failed: ${reason}`);
  } finally {
    cancel();
  }
}

/**
 * Reads a setup answer.
 *
 * @throws {SetupWebhookError} naming the field and what was expected.
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   parseCallSetup({ variables: { name: "Asha", visits: 3 }, greeting: "Hi {{name}}!" }),
 *   { variables: { name: "Asha", visits: "3" }, greeting: "Hi {{name}}!" },
 * );
 * ```
 */
export function parseCallSetup(body: unknown): CallSetup {
  if (!isRecord(body)) {
    throw new SetupWebhookError(
      `Setup webhook answer ${JSON.stringify(body)}: expected a JSON object`,
    );
  }
  const setup: CallSetup = {};
  for (const field of STRING_FIELDS) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "string" || value.trim() === "") {
      throw new SetupWebhookError(
        `Setup webhook answer's ${field} ${
          JSON.stringify(value)
        }: expected non-empty text`,
      );
    }
    setup[field] = value;
  }
  if (body.language !== undefined && setup.language !== undefined) {
    if (
      !/^(?:[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})*|multi)$/.test(setup.language)
    ) {
      throw new SetupWebhookError(
        `Setup webhook answer's language "${setup.language}": expected a BCP 47 tag such as en-IN`,
      );
    }
  }
  if (body.reject !== undefined && body.reject !== null) {
    if (typeof body.reject !== "boolean") {
      throw new SetupWebhookError(
        `Setup webhook answer's reject ${
          JSON.stringify(body.reject)
        }: expected true or false`,
      );
    }
    if (body.reject) setup.reject = true;
  }
  if (body.variables !== undefined && body.variables !== null) {
    if (!isRecord(body.variables)) {
      throw new SetupWebhookError(
        `Setup webhook answer's variables ${
          JSON.stringify(body.variables)
        }: expected an object of names to values`,
      );
    }
    const variables: Record<string, string> = {};
    for (const [name, value] of Object.entries(body.variables)) {
      if (value === null || value === undefined) continue;
      variables[name] = typeof value === "object"
        ? JSON.stringify(value)
        : String(value);
    }
    setup.variables = variables;
  }
  return setup;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
