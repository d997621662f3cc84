/**
 * Agent files: every class of mistake stops startup with the file, the
 * path, the bad value and what was expected; good files become the agent's
 * configuration, with the environment winning.
 */
import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  AGENT_FILE_SECTIONS,
  AgentFileError,
  loadAgentFile,
  loadAgents,
} from "../src/bots/agent/agent_file.ts";
import { loadAgentConfig } from "../src/bots/agent/config.ts";
import { ConfigError } from "../src/env_values.ts";

const ENV = { DEEPGRAM_API_KEY: "dg", LLM_API_KEY: "sk" };

/** Reads `files` instead of the disk. */
function from(files: Record<string, string>) {
  return {
    readTextFile: (path: string) => {
      if (!(path in files)) throw new Error(`No such file "${path}"`);
      return files[path];
    },
    listDirectory: (path: string) =>
      path.endsWith("/")
        ? Object.keys(files).filter((name) => name.startsWith(path)).map((
          name,
        ) => name.slice(path.length))
        : undefined,
  };
}

function problems(
  source: string,
  env: Record<string, string> = ENV,
  file = "agent.yaml",
): string[] {
  const error = assertThrows(
    () => loadAgentFile(file, env, from({ [file]: source })),
    AgentFileError,
  );
  return error.problems;
}

const GOOD = `# yaml-language-server: $schema=./agent.schema.json
prompt: You are the front desk of Sunrise Clinic. Today is {{date}}.
greeting: Hello {{patient}}! Sunrise Clinic here.
language: en-IN
voice: aura-2-helena-en
variables:
  patient: there
bargeIn:
  enabled: true
  minSpeechMs: 300
  ignoreWords: [haan, ok]
providers:
  llm:
    model: gpt-4.1-mini
    temperature: 0.3
builtinTools:
  transfer: false
tools:
  - name: book_appointment
    description: Book a slot for the caller.
    parameters:
      type: object
      properties: { date: { type: string }, time: { type: string } }
      required: [date, time]
    webhook:
      url: https://clinic.example/api/book
      headers: { Authorization: "Bearer \${CLINIC_API_KEY}" }
      timeoutMs: 4000
    say: One moment while I book that.
    redact: [phone]
`;

Deno.test("a good agent file becomes the agent's configuration, with ${VAR} expanded and the environment winning", () => {
  const config = loadAgentFile(
    "agent.yaml",
    { ...ENV, CLINIC_API_KEY: "secret", AGENT_LANGUAGE: "hi-IN" },
    from({ "agent.yaml": GOOD }),
  );
  assertEquals(config.name, "agent");
  assertEquals(config.greeting, "Hello {{patient}}! Sunrise Clinic here.");
  assertEquals(config.language, "hi-IN", "the environment overrides the file");
  assertEquals(config.tts.voice, "aura-2-helena-en");
  assertEquals(config.llm.model, "gpt-4.1-mini");
  assertEquals(config.llm.temperature, 0.3);
  assertEquals(config.bargeIn.minSpeechMs, 300);
  assertEquals(config.bargeIn.backchannels, ["haan", "ok"]);
  assertEquals(config.variables, { patient: "there" });
  assertEquals(config.builtinTools, { endCall: true, transfer: false });
  assertEquals(config.tools.map((tool) => tool.definition.name), [
    "book_appointment",
  ]);
  assertEquals(config.tools[0].say, "One moment while I book that.");
  assertEquals(config.tools[0].redact, ["phone"]);
});

Deno.test("the same agent as JSON loads the same", () => {
  const json = JSON.stringify({
    prompt: "Be brief.",
    tools: [{
      name: "lookup",
      description: "Look up.",
      parameters: { type: "object", properties: {} },
      webhook: { url: "http://127.0.0.1:9/lookup", method: "get" },
    }],
  });
  const config = loadAgentFile("desk.json", ENV, from({ "desk.json": json }));
  assertEquals(config.name, "desk");
  assertEquals(config.prompt, "Be brief.");
  assertEquals(config.tools.length, 1);
});

Deno.test("agent file: a URL that is not http(s) names the file, the 0-based path, the value and what was expected", () => {
  const source = `tools:
  - name: ok_tool
    description: Fine.
    webhook: { url: "https://x.example/a" }
  - name: bad_tool
    description: Bad.
    webhook: { url: "ftp://x" }
`;
  assertEquals(problems(source), [
    'agent.yaml: tools[1].webhook.url: expected an http(s) URL, got "ftp://x"',
  ]);
});

Deno.test("agent file: an unset ${VAR} names the variable and where it is used", () => {
  assertEquals(problems(GOOD), [
    "agent.yaml: tools[0].webhook.headers.Authorization: ${CLINIC_API_KEY} is not set in the environment",
  ]);
});

Deno.test("agent file: every mistake is listed, not only the first", () => {
  const source = `greting: Hi
bargeIn: { minSpeechMs: 5, enabled: "yes" }
providers: { tts: { provider: polly } }
maxHistory: many
`;
  assertEquals(problems(source), [
    'agent.yaml: greting: expected one of the keys prompt, promptFile, greeting, language, voice, languages, voices, timezone, fallbackText, goodbyeText, transferText, turnTimeoutMs, dtmfTimeoutMs, maxHistory, maxFailedTurns, onFailure, bargeIn, silence, providers, setup, variables, builtinTools, tools, got "greting"',
    'agent.yaml: maxHistory: expected a whole number from 2 to 1000, got "many"',
    'agent.yaml: bargeIn.enabled: expected true or false, got "yes"',
    "agent.yaml: bargeIn.minSpeechMs: expected a whole number from 20 to 10000, got 5",
    'agent.yaml: providers.tts.provider: expected one of deepgram, elevenlabs, sarvam, or a list of them in order of preference, got "polly"',
  ]);
});

Deno.test("agent file: a tool without a description, with a bad schema, a reserved or duplicate name, is refused", () => {
  const source = `tools:
  - name: end_call
    description: Mine.
    webhook: { url: "https://x.example/a" }
  - name: lookup
    parameters: { type: object, properties: { id: { type: strin } } }
    webhook: { url: "https://x.example/a", method: PUT, timeoutMs: 0 }
  - name: lookup
    description: Again.
    webhook: { url: "https://x.example/b" }
`;
  assertEquals(problems(source), [
    'agent.yaml: tools[0].name: expected a name other than the built-in end_call and transfer, got "end_call"',
    "agent.yaml: tools[1].description: expected text telling the model what the tool does, got nothing",
    'agent.yaml: tools[1].parameters.properties.id.type: expected one of string, number, integer, boolean, object, array, null, got "strin"',
    'agent.yaml: tools[1].webhook.method: expected GET or POST, got "PUT"',
    "agent.yaml: tools[1].webhook.timeoutMs: expected a whole number from 100 to 60000, got 0",
    'agent.yaml: tools[2].name: expected a name no other tool has, got "lookup"',
  ]);
});

Deno.test("agent file: a YAML syntax error names the file and line", () => {
  const [problem] = problems("prompt: [unclosed\ngreeting: hi\n");
  assertStringIncludes(problem, "agent.yaml:");
  assertStringIncludes(problem, "expected YAML, got a syntax error");
});

Deno.test("agent file: JSON that does not parse is refused", () => {
  const [problem] = problems('{"prompt": ', ENV, "agent.json");
  assertStringIncludes(
    problem,
    "agent.json: expected JSON, got a syntax error",
  );
});

Deno.test("agent file: an unknown placeholder stops startup; declared variables and custom.KEY are known", () => {
  const error = assertThrows(
    () =>
      loadAgentFile(
        "agent.yaml",
        ENV,
        from({
          "agent.yaml":
            "variables: { tier: gold }\nprompt: 'Caller {{caller}} ({{tier}}, {{custom.lang}}) {{nmae}}'\n",
        }),
      ),
    AgentFileError,
  );
  assertEquals(error.problems, [
    'agent.yaml: prompt: Invalid AGENT_PROMPT: unknown placeholder "{{nmae}}": expected {{caller}}, {{called}}, {{date}}, {{time}}, {{custom.KEY}} or a declared variable (tier)',
  ]);
  const env = assertThrows(
    () => loadAgentConfig({ ...ENV, AGENT_GREETING: "Hi {{name}}" }),
    ConfigError,
  );
  assertEquals(env.variable, "AGENT_GREETING");
});

Deno.test("agent file: a file that cannot be read, or is not a mapping, is refused", () => {
  assertEquals(
    assertThrows(
      () => loadAgentFile("missing.yaml", ENV, from({})),
      AgentFileError,
    ).problems,
    ['missing.yaml: cannot be read (No such file "missing.yaml")'],
  );
  assertEquals(problems("- just\n- a list\n"), [
    'agent.yaml: expected a mapping of settings (prompt, greeting, tools, …), got ["just","a list"]',
  ]);
});

Deno.test("a directory of agent files: each agent named after its file, default chosen, problems of all files listed", () => {
  const files = {
    "agents/default.yaml": "greeting: Welcome to the front desk.\n",
    "agents/clinic.yaml": "greeting: Sunrise Clinic, hello!\n",
    "agents/notes.txt": "ignored",
  };
  const { agents, defaultAgent } = loadAgents("agents/", ENV, from(files));
  assertEquals([...agents.keys()], ["clinic", "default"]);
  assertEquals(defaultAgent, "default");
  assertEquals(agents.get("clinic")?.greeting, "Sunrise Clinic, hello!");
  const error = assertThrows(
    () =>
      loadAgents(
        "agents/",
        ENV,
        from({
          "agents/a.yaml": "maxHistory: 1\n",
          "agents/b.yaml": "setup: { url: nope }\n",
        }),
      ),
    AgentFileError,
  );
  assertEquals(error.problems, [
    "agents/a.yaml: maxHistory: expected a whole number from 2 to 1000, got 1",
    'agents/b.yaml: setup.url: expected an http(s) URL, got "nope"',
  ]);
  assertStringIncludes(error.message, "Invalid AGENT_FILE: 2 problems");
});

Deno.test("agent.schema.json describes the keys the loader accepts, and a blank variable does not override the file", async () => {
  const schema = JSON.parse(await Deno.readTextFile("agent.schema.json"));
  for (const [section, keys] of Object.entries(AGENT_FILE_SECTIONS)) {
    let node = schema;
    for (const part of section === "" ? [] : section.split(".")) {
      node = node.properties[part];
    }
    assertEquals(
      Object.keys(node.properties).sort(),
      [...keys].sort(),
      section,
    );
  }
  assertEquals(
    Object.keys(schema.$defs.tool.properties).sort(),
    ["description", "name", "parameters", "redact", "say", "webhook"],
  );
  const config = loadAgentFile(
    "agent.yaml",
    { ...ENV, AGENT_PROMPT: "", AGENT_GREETING: "  " },
    from({
      "agent.yaml": "prompt: From the file.\ngreeting: Hi from the file.\n",
    }),
  );
  assertEquals(config.prompt, "From the file.");
  assertEquals(config.greeting, "Hi from the file.");
});

Deno.test("AGENT_VARIABLES declares template variables without an agent file, and a bad one names the variable", () => {
  const config = loadAgentConfig({
    ...ENV,
    AGENT_VARIABLES: "name, plan=basic",
    AGENT_GREETING: "Hi {{name}}, you are on {{plan}}.",
  });
  assertEquals(config.variables, { name: "", plan: "basic" });
  const error = assertThrows(
    () => loadAgentConfig({ ...ENV, AGENT_VARIABLES: "good, 9bad" }),
    ConfigError,
  );
  assertEquals(
    error.message,
    'Invalid AGENT_VARIABLES "good, 9bad": "9bad" is not a variable name; expected names or name=default, comma-separated, such as name,plan=basic',
  );
});
