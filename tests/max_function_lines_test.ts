import { assertEquals, assertStringIncludes } from "@std/assert";
import plugin, {
  createPlugin,
  MAX_FUNCTION_LINES,
  REPORT_ONLY,
} from "../tools/lint/max_function_lines.ts";
import { listFiles } from "../tools/list_files.ts";

const everything = createPlugin({ reportOnly: {} });

/** `count` statements, one a line. */
function statements(count: number): string {
  return Array.from({ length: count }, (_, i) => `  use(${i});`).join("\n");
}

/** A function whose body spans `lines` lines, braces included. */
function functionOf(lines: number, name = "work"): string {
  return `export function ${name}() {\n${statements(lines - 2)}\n}\n`;
}

function messages(source: string, file = "src/sample.ts"): string[] {
  return Deno.lint.runPlugin(everything, file, source).map((d) => d.message);
}

Deno.test("max-function-lines: a body of 60 lines passes, 61 is reported with its name and length", () => {
  assertEquals(messages(functionOf(MAX_FUNCTION_LINES)), []);
  assertEquals(messages(functionOf(MAX_FUNCTION_LINES + 1)), [
    `Function "work" is 61 lines long; the limit is 60.`,
  ]);
});

Deno.test("max-function-lines: the diagnostic points at the function's head, and says how to fix it", () => {
  const source = functionOf(70);
  const [diagnostic] = Deno.lint.runPlugin(everything, "src/a.ts", source);
  assertEquals(diagnostic.id, "exovoice/max-function-lines");
  assertEquals(
    source.slice(diagnostic.range[0], diagnostic.range[1]),
    "function work() {",
  );
  assertStringIncludes(diagnostic.hint ?? "", "Split it");
});

Deno.test("max-function-lines: methods, private methods, arrows and callbacks are named", () => {
  const long = `{\n${statements(70)}\n}`;
  const source = [
    `class Player {`,
    `  play() ${long}`,
    `  #pace() ${long}`,
    `  onChunk = () => ${long};`,
    `}`,
    `const route = () => ${long};`,
    `export const handlers = { health() ${long} };`,
    `function outer() { [1].forEach(() => ${long}); }`,
  ].join("\n");
  assertEquals(
    messages(source).map((message) => /"(.*)"/.exec(message)?.[1]),
    [
      "Player.play",
      "Player.#pace",
      "Player.onChunk",
      "route",
      "health",
      "outer",
      "(callback in outer)",
    ],
  );
});

Deno.test("max-function-lines: a data table (one returned object or array literal) is exempt", () => {
  const entries = Array.from({ length: 70 }, (_, i) => `    k${i}: ${i},`)
    .join("\n");
  const items = Array.from({ length: 70 }, (_, i) => `    ${i},`).join("\n");
  const tables = [
    `function table() {\n  return {\n${entries}\n  };\n}`,
    `function list() {\n  return [\n${items}\n  ] as const;\n}`,
    `const arrow = () => ({\n${entries}\n});`,
    `function typed() {\n  return {\n${entries}\n  } satisfies Record<string, number>;\n}`,
  ];
  for (const table of tables) assertEquals(messages(table), [], table);
  // A statement before the literal makes it code, not a table.
  const computed =
    `function computed() {\n  const base = 1;\n  return {\n${entries}\n  };\n}`;
  assertEquals(messages(computed), [
    `Function "computed" is 75 lines long; the limit is 60.`,
  ]);
});

Deno.test("max-function-lines: nested functions count inside their holder and on their own", () => {
  const inner = `  const inner = () => {\n${statements(40)}\n  };`;
  const source = `function holder() {\n${inner}\n${statements(25)}\n}`;
  assertEquals(messages(source), [
    `Function "holder" is 69 lines long; the limit is 60.`,
  ]);
});

Deno.test("max-function-lines: checks src/ only", () => {
  const source = functionOf(80);
  assertEquals(messages(source, "/repo/src/call/call.ts").length, 1);
  assertEquals(messages(source, "src/server.ts").length, 1);
  assertEquals(messages(source, "/repo/tests/call_test.ts"), []);
  assertEquals(messages(source, "/repo/bench/load.ts"), []);
  assertEquals(messages(source, "/repo/tools/simulate.ts"), []);
});

Deno.test("max-function-lines: a report-only entry hides that function, and only it", () => {
  const reportOnly = { "src/legacy.ts": ["old"] };
  const scoped = createPlugin({ reportOnly });
  const source = functionOf(80, "old") + functionOf(80, "fresh");
  const reported = Deno.lint.runPlugin(scoped, "/repo/src/legacy.ts", source)
    .map((d) => d.message);
  assertEquals(reported, [
    `Function "fresh" is 80 lines long; the limit is 60.`,
  ]);
  // The same names in another file are reported.
  assertEquals(
    Deno.lint.runPlugin(scoped, "/repo/src/other.ts", source).length,
    2,
  );
});

Deno.test("max-function-lines: the project's deno lint runs the rule and honours an ignore comment", async () => {
  // Under src/ (the rule checks nothing else), hidden from the src/ scan below.
  const dir = await Deno.makeTempDir({ dir: "src", prefix: ".lint_sample_" });
  try {
    const long = functionOf(70, "long");
    const ignored =
      "// deno-lint-ignore exovoice/max-function-lines -- data table\n" +
      functionOf(70, "ignored");
    await Deno.writeTextFile(`${dir}/sample.ts`, long + ignored);
    const { stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["lint", "--json", `${dir}/sample.ts`],
      stdout: "piped",
      stderr: "null",
    }).output();
    const report: { diagnostics: { code: string; message: string }[] } = JSON
      .parse(new TextDecoder().decode(stdout));
    assertEquals(
      report.diagnostics.map((d) => `${d.code}: ${d.message}`),
      [
        `exovoice/max-function-lines: Function "long" is 70 lines long; the limit is 60.`,
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("max-function-lines: src/ has no long function but the report-only ones, and each of those is still long", async () => {
  const found: Record<string, string[]> = {};
  for (const file of await listFiles("src", { match: /\.(ts|js)$/ })) {
    const source = await Deno.readTextFile(file);
    const names = Deno.lint.runPlugin(everything, file, source)
      .map((d) => /"(.*)"/.exec(d.message)?.[1] ?? d.message);
    if (names.length > 0) found[file] = names.sort();
  }
  const expected = Object.fromEntries(
    Object.entries(REPORT_ONLY).map((
      [file, names],
    ) => [file, [...names].sort()]),
  );
  // A difference here means: split the new long function (it is not on the
  // list), or take a function that is no longer long off REPORT_ONLY.
  assertEquals(found, expected);
});

Deno.test("max-function-lines: the default export is the plugin deno.json loads", async () => {
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  assertEquals(config.lint.plugins, ["./tools/lint/max_function_lines.ts"]);
  assertEquals(plugin.name, "exovoice");
  assertEquals(Object.keys(plugin.rules), [
    "max-function-lines",
    "max-params",
  ]);
});
