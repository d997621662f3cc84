import { assertEquals } from "@std/assert";
import {
  describeProblems,
  findCycles,
  findLayerViolations,
  type Layer,
  layerOf,
  LAYERS,
  loadImportGraph,
} from "../tools/check_imports.ts";

const FIXTURE = new URL("./fixtures/imports/", import.meta.url).pathname;

Deno.test("check_imports finds a type-only cycle, an upward import and a module under no layer in a fixture program", async () => {
  const graph = await loadImportGraph(["main.ts"], { root: FIXTURE });
  assertEquals([...graph.keys()].sort(), [
    "main.ts",
    "src/audio/pcm.ts",
    "src/bots/bot.ts",
    "src/call/player.ts",
    "src/extra/orphan.ts",
  ]);
  assertEquals(findCycles(graph), [
    ["src/bots/bot.ts", "src/call/player.ts", "src/bots/bot.ts"],
  ]);
  assertEquals(findLayerViolations(graph, LAYERS), [
    {
      from: "src/call/player.ts",
      to: "src/bots/bot.ts",
      fromLayer: "call",
      toLayer: "bots",
    },
    { from: "src/extra/orphan.ts", to: "src/audio/pcm.ts", toLayer: "audio" },
  ]);
});

Deno.test("check_imports finds every cycle a walk closes, self-imports included", () => {
  const graph = new Map([
    ["a.ts", ["b.ts", "d.ts"]],
    ["b.ts", ["a.ts"]],
    ["d.ts", ["d.ts", "e.ts"]],
    ["e.ts", []],
  ]);
  assertEquals(findCycles(graph), [
    ["a.ts", "b.ts", "a.ts"],
    ["d.ts", "d.ts"],
  ]);
  assertEquals(findCycles(new Map([["a.ts", ["b.ts"]], ["b.ts", []]])), []);
});

Deno.test("check_imports places a module in the layer of its longest matching path", () => {
  const layers: Layer[] = [
    { name: "lower", paths: ["src/"], mayImport: [] },
    { name: "upper", paths: ["src/top/", "main.ts"], mayImport: ["lower"] },
  ];
  const cases: Array<[string, string | undefined]> = [
    ["src/a.ts", "lower"],
    ["src/top/b.ts", "upper"],
    ["main.ts", "upper"],
    ["main.tsx", undefined],
    ["tools/x.ts", undefined],
  ];
  for (const [path, layer] of cases) {
    assertEquals(layerOf(path, layers)?.name, layer, path);
  }
  const graph = new Map([
    ["src/top/b.ts", ["src/a.ts", "src/top/c.ts"]],
    ["src/a.ts", ["src/top/b.ts"]],
  ]);
  assertEquals(findLayerViolations(graph, layers), [
    {
      from: "src/a.ts",
      to: "src/top/b.ts",
      fromLayer: "lower",
      toLayer: "upper",
    },
  ]);
});

Deno.test("check_imports describes each problem on its own line, naming what the layer may import", () => {
  assertEquals(
    describeProblems({
      cycles: [["src/bots/bot.ts", "src/call/player.ts", "src/bots/bot.ts"]],
      violations: [
        {
          from: "src/call/player.ts",
          to: "src/bots/bot.ts",
          fromLayer: "call",
          toLayer: "bots",
        },
        { from: "src/extra/x.ts", to: "src/audio/pcm.ts", toLayer: "audio" },
      ],
    }, LAYERS),
    [
      "Import cycle: src/bots/bot.ts → src/call/player.ts → src/bots/bot.ts",
      "Import against the layers: src/call/player.ts (call) → src/bots/bot.ts (bots); call may import audio, exotel, foundation",
      'Module under no layer: "src/extra/x.ts" (imported as src/extra/x.ts → src/audio/pcm.ts); add it to LAYERS in tools/check_imports.ts',
    ],
  );
});

Deno.test("exovoice's own import graph has no cycle and goes down the layers", async () => {
  const graph = await loadImportGraph(["main.ts", "mod.ts"], {
    root: new URL("../", import.meta.url).pathname,
  });
  assertEquals(findCycles(graph), []);
  assertEquals(findLayerViolations(graph, LAYERS), []);
});
