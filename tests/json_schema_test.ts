/** The JSON Schema subset tool arguments are checked against. */
import { assertEquals } from "@std/assert";
import { schemaProblems, validateJson } from "../src/bots/agent/json_schema.ts";
import { codeTool, redact, ToolRunner } from "../src/bots/agent/tool_runner.ts";

const ORDER = {
  type: "object",
  properties: {
    sku: { type: "string", minLength: 3, pattern: "^[A-Z]+-\\d+$" },
    quantity: { type: "integer", minimum: 1, maximum: 10 },
    size: { enum: ["S", "M", "L"] },
    gift: { type: "boolean" },
    when: { type: "string", format: "date" },
    note: { type: ["string", "null"], maxLength: 5 },
    lines: {
      type: "array",
      maxItems: 2,
      items: {
        type: "object",
        properties: { id: { type: "number" } },
        required: ["id"],
      },
    },
    contact: {
      anyOf: [{ type: "string", format: "email" }, { type: "integer" }],
    },
  },
  required: ["sku"],
  additionalProperties: false,
};

Deno.test("valid arguments pass the schema", () => {
  assertEquals(
    validateJson(ORDER, {
      sku: "AB-12",
      quantity: 2,
      size: "M",
      gift: false,
      when: "2026-12-04",
      note: null,
      lines: [{ id: 1 }, { id: 2.5 }],
      contact: "a@b.in",
    }),
    [],
  );
});

Deno.test("every broken rule is reported with its path, what was expected and the value", () => {
  assertEquals(
    validateJson(ORDER, {
      sku: "x",
      quantity: 1.5,
      size: "XL",
      gift: "yes",
      when: "tomorrow",
      note: "too long",
      lines: [{}, { id: "2" }, { id: 3 }],
      contact: true,
      extra: 1,
    }),
    [
      'sku: expected at least 3 characters, got "x"',
      'sku: expected text matching /^[A-Z]+-\\d+$/, got "x"',
      "quantity: expected an integer, got 1.5",
      'size: expected one of "S", "M", "L", got "XL"',
      'gift: expected a boolean, got "yes"',
      'when: expected a date, got "tomorrow"',
      'note: expected at most 5 characters, got "too long"',
      "lines: expected at most 2 items, got 3",
      "lines[0].id: is required, got nothing",
      'lines[1].id: expected a number, got "2"',
      "contact: matches none of the allowed shapes, got true",
      "extra: is not an accepted property, got 1",
    ],
  );
  assertEquals(validateJson({ type: "object" }, []), [
    "expected an object, got []",
  ]);
  assertEquals(validateJson({ type: "integer", minimum: 1 }, 0), [
    "expected a number of at least 1, got 0",
  ]);
});

Deno.test("schema mistakes are found before any call", () => {
  assertEquals(
    schemaProblems({
      type: "object",
      properties: { a: { type: "strng" }, b: { pattern: "(" } },
      required: "a",
    }),
    [
      'properties.a.type: expected one of string, number, integer, boolean, object, array, null, got "strng"',
      'properties.b.pattern: expected a regular expression, got "("',
      'required: expected a list of property names, got "a"',
    ],
  );
});

Deno.test("the tool runner refuses a code tool whose schema has mistakes", () => {
  let message = "";
  try {
    new ToolRunner([codeTool({
      name: "lookup",
      description: "Look up.",
      parameters: { type: "object", properties: { id: { type: "text" } } },
      run: () => null,
    })]);
  } catch (error) {
    message = (error as Error).message;
  }
  assertEquals(
    message,
    'Invalid parameters of tool "lookup": properties.id.type: expected one of string, number, integer, boolean, object, array, null, got "text"',
  );
});

Deno.test("the tool runner answers unknown tools and garbled arguments, times out slow code tools, and masks redacted fields", async () => {
  const runner = new ToolRunner([
    codeTool({
      name: "slow",
      description: "Never finishes in time.",
      parameters: { type: "object", properties: { pin: { type: "string" } } },
      timeoutMs: 50,
      redact: ["pin"],
      run: () => new Promise((resolve) => setTimeout(resolve, 200)),
    }),
  ]);
  const call = {
    callId: "CA1",
    streamSid: "MZ1",
    from: "",
    to: "",
    customParameters: {},
  };
  const results = await runner.run([
    { id: "1", name: "nope", arguments: "{}" },
    { id: "2", name: "slow", arguments: "{not json" },
    { id: "3", name: "slow", arguments: '{"pin":"1234"}' },
  ], call);
  assertEquals(results.map((r) => [r.toolCallId, r.outcome, r.content]), [
    [
      "1",
      "unknown_tool",
      '{"error":"unknown tool \\"nope\\": expected one of slow"}',
    ],
    [
      "2",
      "invalid_arguments",
      '{"error":"invalid arguments: expected a JSON object, got \\"{not json\\""}',
    ],
    ["3", "timeout", '{"error":"timeout after 50 ms"}'],
  ]);
  assertEquals(results[2].arguments, { pin: "[redacted]" });
  assertEquals(redact({ a: [{ pin: 1 }], b: 2 }, ["pin"]), {
    a: [{ pin: "[redacted]" }],
    b: 2,
  });
  // The slow tool's own timer is still pending: let it end.
  await new Promise((resolve) => setTimeout(resolve, 250));
});
