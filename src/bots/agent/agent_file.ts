/**
 * Agent files (`AGENT_FILE`): YAML or JSON holding what the `AGENT_*`,
 * `STT_*`, `LLM_*` and `TTS_*` variables hold, under lower-camel keys, plus
 * tools, template variables and the setup webhook. Environment variables
 * override the file. `${VAR}` anywhere in a string is taken from the
 * environment at startup. Every mistake in the file is reported at once,
 * each as `agent.yaml: tools[1].webhook.url: expected an http(s) URL, got
 * "ftp://x"`, and stops startup.
 *
 * `AGENT_FILE` may also name a directory: each `*.yaml`, `*.yml` or
 * `*.json` in it is an agent, named after its file, chosen per call by the
 * socket URL's `agent=<name>`.
 *
 * @module
 */

import { parseDocument } from "yaml";
import { ConfigError, type Env } from "../../env_values.ts";
import { type AgentConfig, loadAgentConfig } from "./config.ts";
import { schemaProblems, show } from "./json_schema.ts";
import { type CodeTool, codeTool, TOOL_NAME } from "./tool_runner.ts";
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_WEBHOOK_TIMEOUT_MS,
  webhookTool,
} from "./webhook_tool.ts";

/** Mistakes in an agent file, all of them, one per line. */
export class AgentFileError extends ConfigError {
  /** Each mistake, as `file: path: what was expected, got value`. */
  readonly problems: string[];

  /** Creates the error from its list of problems. */
  constructor(problems: string[]) {
    super(
      "AGENT_FILE",
      `Invalid AGENT_FILE: ${problems.length} problem${
        problems.length === 1 ? "" : "s"
      }:\n  ${problems.join("\n  ")}`,
    );
    this.name = "AgentFileError";
    this.problems = problems;
  }
}

/** How a file key becomes a setting; `list`: a list of such values is taken too (provider fallback), as the variable's comma list. */
type Rule =
  & (
    | { kind: "text"; env: string }
    | { kind: "integer"; env: string; min: number; max: number }
    | { kind: "number"; env: string; min: number; max: number }
    | { kind: "choice"; env: string; values: readonly string[] }
    | { kind: "switch"; env: string }
    | { kind: "words"; env: string }
    | { kind: "pairs"; env: string }
    | { kind: "url"; env: string; protocols: readonly string[] }
  )
  & { list?: boolean };

/** A rule that also takes a list, in order of preference. */
const listed = (rule: Rule): Rule => ({ ...rule, list: true });

const int = (env: string, min: number, max: number): Rule => ({
  kind: "integer",
  env,
  min,
  max,
});
const text = (env: string): Rule => ({ kind: "text", env });
const httpUrl = (env: string): Rule => ({
  kind: "url",
  env,
  protocols: ["http:", "https:"],
});

/** File keys that are environment variables under another name. */
const SETTINGS: Record<string, Rule> = {
  prompt: text("AGENT_PROMPT"),
  greeting: text("AGENT_GREETING"),
  language: text("AGENT_LANGUAGE"),
  voice: text("TTS_VOICE"),
  languages: { kind: "words", env: "AGENT_LANGUAGES" },
  voices: { kind: "pairs", env: "TTS_VOICES" },
  timezone: text("AGENT_TIMEZONE"),
  fallbackText: text("AGENT_FALLBACK_TEXT"),
  goodbyeText: text("AGENT_GOODBYE_TEXT"),
  transferText: text("AGENT_TRANSFER_TEXT"),
  turnTimeoutMs: int("AGENT_TURN_TIMEOUT_MS", 100, 10_000),
  dtmfTimeoutMs: int("AGENT_DTMF_TIMEOUT_MS", 100, 30_000),
  maxHistory: int("AGENT_MAX_HISTORY", 2, 1000),
  "bargeIn.enabled": { kind: "switch", env: "AGENT_BARGE_IN" },
  "bargeIn.minSpeechMs": int("AGENT_BARGE_IN_MIN_SPEECH_MS", 20, 10_000),
  "bargeIn.pauseMs": int("AGENT_BARGE_IN_PAUSE_MS", 0, 10_000),
  "bargeIn.resumeMs": int("AGENT_BARGE_IN_RESUME_MS", 0, 10_000),
  "bargeIn.minWords": int("AGENT_BARGE_IN_MIN_WORDS", 0, 100),
  "bargeIn.ignoreWords": { kind: "words", env: "AGENT_BARGE_IN_IGNORE_WORDS" },
  "bargeIn.afterMs": int("AGENT_BARGE_IN_AFTER_MS", 0, 60_000),
  "silence.repromptS": int("AGENT_SILENCE_REPROMPT_S", 0, 3600),
  "silence.reprompts": int("AGENT_SILENCE_REPROMPTS", 0, 10),
  "silence.repromptText": text("AGENT_REPROMPT_TEXT"),
  "silence.goodbyeText": text("AGENT_SILENCE_GOODBYE_TEXT"),
  "setup.url": httpUrl("AGENT_SETUP_URL"),
  "setup.timeoutMs": int("AGENT_SETUP_TIMEOUT_MS", 50, 30_000),
  "providers.stt.provider": listed({
    kind: "choice",
    env: "STT_PROVIDER",
    values: ["deepgram", "sarvam"],
  }),
  "providers.stt.model": listed(text("STT_MODEL")),
  "providers.stt.baseUrl": listed({
    kind: "url",
    env: "STT_BASE_URL",
    protocols: ["ws:", "wss:"],
  }),
  "providers.stt.endpointingMs": int("STT_ENDPOINTING_MS", 10, 10_000),
  "providers.stt.timeoutMs": int("STT_TIMEOUT_MS", 100, 60_000),
  "providers.llm.baseUrl": listed(httpUrl("LLM_BASE_URL")),
  "providers.llm.model": listed(text("LLM_MODEL")),
  "providers.llm.temperature": {
    kind: "number",
    env: "LLM_TEMPERATURE",
    min: 0,
    max: 2,
  },
  "providers.llm.maxTokens": int("LLM_MAX_TOKENS", 1, 100_000),
  "providers.llm.timeoutMs": int("LLM_TIMEOUT_MS", 100, 120_000),
  "providers.llm.apiKeyHeader": text("LLM_API_KEY_HEADER"),
  "providers.tts.provider": listed({
    kind: "choice",
    env: "TTS_PROVIDER",
    values: ["deepgram", "elevenlabs", "sarvam"],
  }),
  "providers.tts.voice": listed(text("TTS_VOICE")),
  "providers.tts.model": listed(text("TTS_MODEL")),
  "providers.tts.baseUrl": listed(httpUrl("TTS_BASE_URL")),
  maxFailedTurns: int("AGENT_MAX_FAILED_TURNS", 0, 100),
  onFailure: {
    kind: "choice",
    env: "AGENT_ON_FAILURE",
    values: ["hangup", "transfer"],
  },
  "providers.tts.timeoutMs": int("TTS_TIMEOUT_MS", 100, 60_000),
};

/** Objects whose keys are checked, by path (`""` the top); other keys are mistakes. */
export const AGENT_FILE_SECTIONS: Readonly<Record<string, readonly string[]>> =
  {
    "": [
      "$schema",
      "prompt",
      "promptFile",
      "greeting",
      "language",
      "voice",
      "languages",
      "voices",
      "timezone",
      "fallbackText",
      "goodbyeText",
      "transferText",
      "turnTimeoutMs",
      "dtmfTimeoutMs",
      "maxHistory",
      "maxFailedTurns",
      "onFailure",
      "bargeIn",
      "silence",
      "providers",
      "setup",
      "variables",
      "builtinTools",
      "tools",
    ],
    bargeIn: [
      "enabled",
      "minSpeechMs",
      "pauseMs",
      "resumeMs",
      "minWords",
      "ignoreWords",
      "afterMs",
    ],
    silence: ["repromptS", "reprompts", "repromptText", "goodbyeText"],
    providers: ["stt", "llm", "tts"],
    "providers.stt": [
      "provider",
      "model",
      "baseUrl",
      "endpointingMs",
      "timeoutMs",
    ],
    "providers.llm": [
      "baseUrl",
      "model",
      "temperature",
      "maxTokens",
      "timeoutMs",
      "apiKeyHeader",
    ],
    "providers.tts": ["provider", "voice", "model", "baseUrl", "timeoutMs"],
    setup: ["url", "timeoutMs"],
    builtinTools: ["endCall", "transfer"],
  };

const TOOL_KEYS = [
  "name",
  "description",
  "parameters",
  "webhook",
  "say",
  "redact",
];
const WEBHOOK_KEYS = [
  "url",
  "method",
  "headers",
  "timeoutMs",
  "maxResponseBytes",
];
const BUILT_IN_NAMES = ["end_call", "transfer"];
const EXTENSIONS = [".yaml", ".yml", ".json"];

/** How {@linkcode loadAgents} reads files; replaceable in tests. */
export interface LoadAgentsOptions {
  /** Reads a text file; `Deno.readTextFileSync` by default. */
  readTextFile?: (path: string) => string;
  /** Lists a directory's file names, or undefined when `path` is a file; Deno's by default. */
  listDirectory?: (path: string) => string[] | undefined;
  /** Whether the agents run the cascade, whose keys are then required (see `loadAgentConfig`). */
  cascade?: boolean;
}

/** The agents of a server, by name, and the one calls get without `agent=`. */
export interface Agents {
  /** Every agent, by name. */
  agents: Map<string, AgentConfig>;
  /** The agent for calls that name none: `default`, or the only one. */
  defaultAgent?: string;
}

/**
 * Loads `AGENT_FILE` (a file, or a directory of them) merged with `env`.
 *
 * @throws {AgentFileError} listing every mistake of every file.
 * @throws {ConfigError} for a bad environment variable.
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * // Two agent files in agents/; here read from memory instead of the disk.
 * const files: Record<string, string> = {
 *   "agents/default.yaml": "prompt: You answer for Sunrise Clinic.\n",
 *   "agents/sales.yaml": "prompt: You sell Sunrise Clinic plans.\nlanguage: hi-IN\n",
 * };
 * const { agents, defaultAgent } = loadAgents(
 *   "agents/",
 *   { DEEPGRAM_API_KEY: "dg-key", LLM_API_KEY: "sk-key" },
 *   {
 *     readTextFile: (path) => files[path],
 *     listDirectory: (path) =>
 *       path === "agents/"
 *         ? Object.keys(files).map((name) => name.slice(path.length))
 *         : undefined,
 *   },
 * );
 * assertEquals([...agents.keys()], ["default", "sales"]);
 * assertEquals(defaultAgent, "default");
 * assertEquals(agents.get("sales")?.language, "hi-IN");
 * ```
 */
export function loadAgents(
  path: string,
  env: Env,
  options: LoadAgentsOptions = {},
): Agents {
  const list = options.listDirectory ?? listDirectory;
  const names = list(path);
  if (names === undefined) {
    const config = loadAgentFile(path, env, options);
    return {
      agents: new Map([[config.name, config]]),
      defaultAgent: config.name,
    };
  }
  const files = names.filter((name) =>
    EXTENSIONS.some((extension) => name.endsWith(extension))
  ).sort();
  if (files.length === 0) {
    throw new AgentFileError([
      `${path}: expected agent files (*.yaml, *.yml, *.json) in the directory, got none`,
    ]);
  }
  const agents = new Map<string, AgentConfig>();
  const problems: string[] = [];
  for (const file of files) {
    const full = `${path.replace(/\/+$/, "")}/${file}`;
    try {
      const config = loadAgentFile(full, env, options);
      if (agents.has(config.name)) {
        problems.push(
          `${full}: expected one file per agent name, got a second "${config.name}"`,
        );
      }
      agents.set(config.name, config);
    } catch (error) {
      if (error instanceof AgentFileError) problems.push(...error.problems);
      else if (error instanceof ConfigError) {
        problems.push(`${full}: ${error.message}`);
      } else throw error;
    }
  }
  if (problems.length > 0) throw new AgentFileError(problems);
  const defaultAgent = agents.has("default")
    ? "default"
    : agents.size === 1
    ? [...agents.keys()][0]
    : undefined;
  return { agents, defaultAgent };
}

/**
 * Loads one agent file merged with `env`; the agent is named after the file.
 *
 * @throws {AgentFileError} listing every mistake.
 */
export function loadAgentFile(
  file: string,
  env: Env,
  options: LoadAgentsOptions = {},
): AgentConfig {
  const read = options.readTextFile ?? Deno.readTextFileSync;
  let source: string;
  try {
    source = read(file);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new AgentFileError([`${file}: cannot be read (${reason})`]);
  }
  return loadAgentValue(parse(file, source), env, {
    ...options,
    name: agentName(file),
    label: file,
  });
}

/** Options of {@linkcode loadAgentValue}. */
export interface LoadAgentValueOptions extends LoadAgentsOptions {
  /** The agent's name. */
  name: string;
  /** What errors call it: the file name, or `agent "NAME"`. */
  label: string;
  /** Code tools, besides the value's webhook tools. */
  codeTools?: readonly CodeTool[];
}

/**
 * Checks and loads an agent given as a value (parsed YAML or JSON, or a
 * {@linkcode defineAgent} result without its code tools), merged with
 * `env`. `options.label` names it in errors, as the file name does.
 *
 * @throws {AgentFileError} listing every mistake.
 */
export function loadAgentValue(
  parsed: unknown,
  env: Env,
  options: LoadAgentValueOptions,
): AgentConfig {
  const file = options.label;
  const read = options.readTextFile ?? Deno.readTextFileSync;
  const problems: string[] = [];
  const where = (path: string) => path === "" ? file : `${file}: ${path}`;
  const expanded = expand(parsed, "", {
    env,
    report: (path, message) => problems.push(`${where(path)}: ${message}`),
  });
  const problem: Problem = (path, expected, got) =>
    problems.push(`${where(path)}: expected ${expected}, got ${show(got)}`);
  if (!isRecord(expanded)) {
    problem("", "a mapping of settings (prompt, greeting, tools, …)", expanded);
    throw new AgentFileError(problems);
  }
  checkKeys(expanded, problem);
  const fileSettings = readSettings(expanded, problem);
  readPromptFile(expanded, { file, read, problem, into: fileSettings });
  const variables = readVariables(expanded.variables, problem);
  const builtinTools = readBuiltinTools(expanded.builtinTools, problem);
  const codeNames = (options.codeTools ?? []).map((tool) => tool.name);
  const tools = readTools(expanded.tools, {
    problem,
    raw: (path, message) => problems.push(`${where(path)}: ${message}`),
  }, builtinTools);
  for (const name of codeNames) {
    if (tools.some((tool) => tool.name === name)) {
      problems.push(
        `${file}: tools: expected one tool named "${name}", got a webhook tool and a code tool`,
      );
    }
  }
  if (problems.length > 0) throw new AgentFileError(problems);
  const merged = mergedEnv(fileSettings.env, env);
  let config: AgentConfig;
  try {
    config = loadAgentConfig(merged, {
      variables,
      readTextFile: options.readTextFile,
      cascade: options.cascade,
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const fileKey = fileSettings.keyOf.get(error.variable);
    const fromFile = fileKey !== undefined && !env[error.variable]?.trim();
    if (!fromFile) throw error;
    throw new AgentFileError([`${where(fileKey)}: ${error.message}`]);
  }
  return {
    ...config,
    name: options.name,
    builtinTools,
    tools: [
      ...tools.map(webhookTool),
      ...(options.codeTools ?? []).map(codeTool),
    ],
  };
}

/** `path: expected …, got value`. */
type Problem = (path: string, expected: string, got: unknown) => void;

/** The settings a file sets, as the environment variables they stand for. */
interface FileSettings {
  /** Variable → value. */
  env: Record<string, string>;
  /** Variable → the file's key that set it, to name it in errors. */
  keyOf: Map<string, string>;
}

function readSettings(
  expanded: Record<string, unknown>,
  problem: Problem,
): FileSettings {
  const settings: FileSettings = { env: {}, keyOf: new Map() };
  for (const [path, rule] of Object.entries(SETTINGS)) {
    const value = at(expanded, path);
    if (value === undefined || value === null) continue;
    const envText = setting(rule, value);
    if (envText === undefined) problem(path, describe(rule), value);
    else {
      settings.env[rule.env] = envText;
      settings.keyOf.set(rule.env, path);
    }
  }
  return settings;
}

/** Reads `promptFile` (relative to the agent file) into `AGENT_PROMPT`. */
function readPromptFile(
  expanded: Record<string, unknown>,
  context: {
    file: string;
    read: (path: string) => string;
    problem: Problem;
    into: FileSettings;
  },
): void {
  const { promptFile } = expanded;
  const { problem, into } = context;
  if (promptFile === undefined) return;
  if (typeof promptFile !== "string") {
    return problem("promptFile", "a file path", promptFile);
  }
  if (expanded.prompt !== undefined) {
    return problem(
      "promptFile",
      "either prompt or promptFile, not both",
      promptFile,
    );
  }
  try {
    into.env.AGENT_PROMPT = context.read(relativeTo(context.file, promptFile));
    into.keyOf.set("AGENT_PROMPT", "promptFile");
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    problem("promptFile", `a readable file (${reason})`, promptFile);
  }
}

function readBuiltinTools(
  value: unknown,
  problem: Problem,
): { endCall: boolean; transfer: boolean } {
  const builtinTools = { endCall: true, transfer: true };
  if (isRecord(value)) {
    for (const key of ["endCall", "transfer"] as const) {
      const enabled = value[key];
      if (enabled === undefined) continue;
      if (typeof enabled !== "boolean") {
        problem(`builtinTools.${key}`, "true or false", enabled);
      } else builtinTools[key] = enabled;
    }
  } else if (value !== undefined) {
    problem(
      "builtinTools",
      "a mapping such as { endCall: true, transfer: false }",
      value,
    );
  }
  return builtinTools;
}

/**
 * The file's settings under the environment's: the environment wins where
 * both set a value. A variable left blank (as .env.example leaves them) does
 * not count as set.
 */
function mergedEnv(
  fileEnv: Record<string, string>,
  env: Env,
): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = { ...fileEnv };
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== "") merged[name] = value;
  }
  if (env.AGENT_PROMPT_FILE?.trim()) delete merged.AGENT_PROMPT;
  return merged;
}

function parse(file: string, source: string): unknown {
  if (file.endsWith(".json")) {
    try {
      return JSON.parse(source);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new AgentFileError([
        `${file}: expected JSON, got a syntax error (${reason})`,
      ]);
    }
  }
  const document = parseDocument(source, { prettyErrors: false });
  if (document.errors.length > 0) {
    throw new AgentFileError(document.errors.map((error) => {
      const line = error.linePos?.[0];
      return `${file}${
        line ? `:${line.line}:${line.col}` : ""
      }: expected YAML, got a syntax error (${error.message.split("\n")[0]})`;
    }));
  }
  return document.toJS() ?? {};
}

/** How {@linkcode expand} reads variables and reports unset ones. */
interface Expansion {
  env: Env;
  report: (path: string, message: string) => void;
}

/** `${VAR}` in every string, from `env`; each unset one reported where it is used. */
function expand(value: unknown, path: string, expansion: Expansion): unknown {
  const { env, report } = expansion;
  if (typeof value === "string") {
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
      (_, name: string) => {
        const found = env[name];
        if (found === undefined || found === "") {
          report(path, `\${${name}} is not set in the environment`);
          return "";
        }
        return found;
      },
    );
  }
  if (Array.isArray(value)) {
    return value.map((item, index) =>
      expand(item, `${path}[${index}]`, expansion)
    );
  }
  if (isRecord(value)) {
    return Object.fromEntries(
      Object.entries(value).map((
        [key, item],
      ) => [
        key,
        expand(item, path === "" ? key : `${path}.${key}`, expansion),
      ]),
    );
  }
  return value;
}

function checkKeys(
  root: Record<string, unknown>,
  problem: (path: string, expected: string, got: unknown) => void,
): void {
  for (const [section, keys] of Object.entries(AGENT_FILE_SECTIONS)) {
    const value = section === "" ? root : at(root, section);
    if (value === undefined || value === null) continue;
    if (!isRecord(value)) {
      problem(section, "a mapping", value);
      continue;
    }
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) {
        problem(
          section === "" ? key : `${section}.${key}`,
          `one of the keys ${keys.filter((k) => k !== "$schema").join(", ")}`,
          key,
        );
      }
    }
  }
}

function setting(rule: Rule, value: unknown): string | undefined {
  if (rule.list && Array.isArray(value) && value.length > 0) {
    // A null entry keeps that provider's default (not for a vendor name).
    const entries = value.map((entry) =>
      entry === null && rule.kind !== "choice"
        ? ""
        : setting({ ...rule, list: false }, entry)
    );
    return entries.every((entry) => entry !== undefined && !entry.includes(","))
      ? entries.join(",")
      : undefined;
  }
  switch (rule.kind) {
    case "text":
      return typeof value === "string" && value.trim() !== ""
        ? value
        : undefined;
    case "integer":
      return Number.isInteger(value) && (value as number) >= rule.min &&
          (value as number) <= rule.max
        ? String(value)
        : undefined;
    case "number":
      return typeof value === "number" && value >= rule.min && value <= rule.max
        ? String(value)
        : undefined;
    case "choice":
      return typeof value === "string" && rule.values.includes(value)
        ? value
        : undefined;
    case "switch":
      return typeof value === "boolean" ? (value ? "on" : "off") : undefined;
    case "words":
      return Array.isArray(value) &&
          value.every((word) => typeof word === "string")
        ? value.join(",")
        : undefined;
    case "pairs":
      return isRecord(value) && Object.keys(value).length > 0 &&
          Object.values(value).every((item) =>
            typeof item === "string" && item.trim() !== ""
          )
        ? Object.entries(value).map(([key, item]) => `${key}:${item}`)
          .join(",")
        : undefined;
    case "url": {
      const url = typeof value === "string" ? URL.parse(value) : null;
      return url && rule.protocols.includes(url.protocol)
        ? String(value)
        : undefined;
    }
  }
}

function describe(rule: Rule): string {
  if (rule.list) {
    return `${
      describe({ ...rule, list: false })
    }, or a list of them in order of preference`;
  }
  switch (rule.kind) {
    case "text":
      return "non-empty text";
    case "integer":
      return `a whole number from ${rule.min} to ${rule.max}`;
    case "number":
      return `a number from ${rule.min} to ${rule.max}`;
    case "choice":
      return `one of ${rule.values.join(", ")}`;
    case "switch":
      return "true or false";
    case "words":
      return "a list of words";
    case "pairs":
      return "a mapping of names to non-empty text";
    case "url":
      return `a ${rule.protocols.map((p) => p.replace(":", "")).join("/")} URL`
        .replace("a http/https URL", "an http(s) URL")
        .replace("a ws/wss URL", "a ws(s) URL");
  }
}

function readVariables(
  value: unknown,
  problem: (path: string, expected: string, got: unknown) => void,
): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) {
    problem(
      "variables",
      "a mapping of variable names to default values",
      value,
    );
    return {};
  }
  const variables: Record<string, string> = {};
  for (const [name, item] of Object.entries(value)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      problem(`variables.${name}`, "a name of letters, digits and _", name);
    } else if (
      item !== null && typeof item === "object"
    ) {
      problem(`variables.${name}`, "a default value (text or number)", item);
    } else {variables[name] = item === null || item === undefined
        ? ""
        : String(item);}
  }
  return variables;
}

interface FileTool {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  say?: string;
  redact?: string[];
  webhook: {
    url: string;
    method: "GET" | "POST";
    headers: Record<string, string>;
    timeoutMs: number;
    maxResponseBytes: number;
  };
}

interface Reporters {
  /** `path: expected …, got value`. */
  problem: (path: string, expected: string, got: unknown) => void;
  /** `path: message`, for messages already worded. */
  raw: (path: string, message: string) => void;
}

type Fail = (key: string, expected: string, got: unknown) => void;

function readTools(
  value: unknown,
  reporters: Reporters,
  builtins: { endCall: boolean; transfer: boolean },
): FileTool[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    reporters.problem("tools", "a list of tools", value);
    return [];
  }
  const tools: FileTool[] = [];
  const seen = new Set<string>();
  value.forEach((item, index) => {
    const tool = readTool(item, {
      path: `tools[${index}]`,
      reporters,
      seen,
      builtins,
    });
    if (tool !== undefined) tools.push(tool);
  });
  return tools;
}

/** Where a tool sits in the file and what it is checked against. */
interface ToolContext {
  path: string;
  reporters: Reporters;
  /** Names of the tools before it. */
  seen: Set<string>;
  builtins: { endCall: boolean; transfer: boolean };
}

/** One webhook tool, or undefined (with its problems reported) when it has any. */
function readTool(item: unknown, context: ToolContext): FileTool | undefined {
  const { path, reporters: { problem, raw } } = context;
  if (!isRecord(item)) {
    problem(
      path,
      "a tool with name, description, parameters and webhook",
      item,
    );
    return undefined;
  }
  let ok = true;
  const fail: Fail = (key, expected, got) => {
    ok = false;
    problem(`${path}.${key}`, expected, got);
  };
  for (const key of Object.keys(item)) {
    if (!TOOL_KEYS.includes(key)) {
      fail(key, `one of the keys ${TOOL_KEYS.join(", ")}`, key);
    }
  }
  checkToolName(item.name, {
    fail,
    seen: context.seen,
    builtins: context.builtins,
  });
  if (typeof item.description !== "string" || item.description.trim() === "") {
    fail(
      "description",
      "text telling the model what the tool does",
      item.description,
    );
  }
  const parameters = item.parameters ?? { type: "object", properties: {} };
  if (!isRecord(parameters) || parameters.type !== "object") {
    fail("parameters", 'a JSON Schema with type "object"', parameters);
  } else if (!checkToolParameters(parameters, { path, raw })) ok = false;
  checkSayAndRedact(item, fail);
  const webhook = readWebhook(item.webhook, fail);
  if (!ok || webhook === undefined) return undefined;
  return {
    name: item.name as string,
    description: item.description as string,
    parameters: parameters as Record<string, unknown>,
    say: item.say as string | undefined,
    redact: item.redact as string[] | undefined,
    webhook,
  };
}

function checkToolName(
  name: unknown,
  context: Pick<ToolContext, "seen" | "builtins"> & { fail: Fail },
): void {
  const { fail, seen, builtins } = context;
  if (typeof name !== "string" || !TOOL_NAME.test(name)) {
    fail("name", "1 to 64 letters, digits, _ or -", name);
  } else if (
    (name === "end_call" && builtins.endCall) ||
    (name === "transfer" && builtins.transfer)
  ) {
    fail(
      "name",
      `a name other than the built-in ${BUILT_IN_NAMES.join(" and ")}`,
      name,
    );
  } else if (seen.has(name)) {
    fail("name", "a name no other tool has", name);
  } else seen.add(name);
}

/** Reports each problem of a tool's parameter schema; true when it has none. */
function checkToolParameters(
  parameters: Record<string, unknown>,
  context: { path: string; raw: Reporters["raw"] },
): boolean {
  const problems = schemaProblems(parameters);
  for (const message of problems) {
    // schemaProblems words "sub.path: expected …": re-root it under the tool.
    const split = /^(.*?): (expected .*)$/.exec(message);
    context.raw(
      `${context.path}.parameters${split ? `.${split[1]}` : ""}`,
      split ? split[2] : message,
    );
  }
  return problems.length === 0;
}

function checkSayAndRedact(item: Record<string, unknown>, fail: Fail): void {
  if (
    item.say !== undefined &&
    (typeof item.say !== "string" || item.say.trim() === "")
  ) {
    fail("say", "a line to speak", item.say);
  }
  if (
    item.redact !== undefined &&
    !(Array.isArray(item.redact) &&
      item.redact.every((field) => typeof field === "string"))
  ) fail("redact", "a list of argument names", item.redact);
}

function readWebhook(
  value: unknown,
  fail: Fail,
): FileTool["webhook"] | undefined {
  if (!isRecord(value)) {
    fail("webhook", "a mapping with the webhook's url", value);
    return undefined;
  }
  let ok = true;
  const bad: Fail = (key, expected, got) => {
    ok = false;
    fail(`webhook.${key}`, expected, got);
  };
  for (const key of Object.keys(value)) {
    if (!WEBHOOK_KEYS.includes(key)) {
      bad(key, `one of the keys ${WEBHOOK_KEYS.join(", ")}`, key);
    }
  }
  const url = typeof value.url === "string" ? URL.parse(value.url) : null;
  if (!url || !["http:", "https:"].includes(url.protocol)) {
    bad("url", "an http(s) URL", value.url);
  }
  const method = value.method === undefined
    ? "POST"
    : typeof value.method === "string"
    ? value.method.toUpperCase()
    : value.method;
  if (method !== "GET" && method !== "POST") {
    bad("method", "GET or POST", value.method);
  }
  const headers = readHeaders(value.headers, bad);
  const timeoutMs = wholeNumber(value, "timeoutMs", {
    fallback: DEFAULT_WEBHOOK_TIMEOUT_MS,
    range: [100, 60_000],
    bad,
  });
  const maxResponseBytes = wholeNumber(value, "maxResponseBytes", {
    fallback: DEFAULT_MAX_RESPONSE_BYTES,
    range: [256, 1_048_576],
    bad,
  });
  if (!ok) return undefined;
  return {
    url: value.url as string,
    method: method as "GET" | "POST",
    headers,
    timeoutMs,
    maxResponseBytes,
  };
}

function readHeaders(value: unknown, bad: Fail): Record<string, string> {
  const headers: Record<string, string> = {};
  if (value === undefined) return headers;
  if (!isRecord(value)) {
    bad("headers", "a mapping of header names to values", value);
    return headers;
  }
  for (const [name, header] of Object.entries(value)) {
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
      bad(`headers.${name}`, "a valid header name", name);
    } else if (typeof header !== "string" && typeof header !== "number") {
      bad(`headers.${name}`, "a header value", header);
    } else headers[name] = String(header);
  }
  return headers;
}

/** `value[key]` as a whole number in `range`, else `fallback` (reported when set). */
function wholeNumber(
  value: Record<string, unknown>,
  key: string,
  options: { fallback: number; range: [number, number]; bad: Fail },
): number {
  const item = value[key];
  const [min, max] = options.range;
  if (item === undefined) return options.fallback;
  if (
    !Number.isInteger(item) || (item as number) < min || (item as number) > max
  ) {
    options.bad(key, `a whole number from ${min} to ${max}`, item);
    return options.fallback;
  }
  return item as number;
}

function at(root: Record<string, unknown>, path: string): unknown {
  let value: unknown = root;
  for (const key of path.split(".")) {
    if (!isRecord(value)) return undefined;
    value = value[key];
  }
  return value;
}

function agentName(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? file;
  return base.replace(/\.(ya?ml|json)$/, "");
}

function relativeTo(file: string, path: string): string {
  if (path.startsWith("/")) return path;
  const slash = file.lastIndexOf("/");
  return slash === -1 ? path : `${file.slice(0, slash + 1)}${path}`;
}

function listDirectory(path: string): string[] | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    // A missing file is reported when it is read, with its path.
    return undefined;
  }
  if (!info.isDirectory) return undefined;
  return [...Deno.readDirSync(path)].filter((entry) => entry.isFile).map((
    entry,
  ) => entry.name);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
