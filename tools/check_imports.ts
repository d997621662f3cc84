/**
 * Checks exovoice's import graph: no import cycle, type-only imports
 * included, and every import goes down the declared {@linkcode LAYERS}
 * (`bots` → `call` → `audio`/`exotel`; `records`, `metrics`, `instances`
 * read call snapshots and never reach up). Run by `deno task check`:
 *
 * ```sh
 * deno run --allow-read --allow-run tools/check_imports.ts
 * ```
 *
 * The graph is Deno's own (`deno info --json`), from `main.ts`, `mod.ts` and
 * every module under `src/` that they do not reach. Exits 1 listing each
 * cycle and each import that breaks the layering; a module under no layer is
 * one too, so that a new folder gets its place in the table.
 *
 * @module
 */

import { listFiles } from "./list_files.ts";

/** Module → the project modules it imports (code or type-only), as paths relative to the project root. */
export type ImportGraph = Map<string, string[]>;

/** A layer of the code base and the layers below it that it may import. */
export interface Layer {
  /** Its name, as the errors quote it. */
  name: string;
  /** Path prefixes of its modules (`src/call/`), or whole paths (`src/log.ts`). */
  paths: readonly string[];
  /** The other layers its modules may import; `*` for any (the composition root). */
  mayImport: readonly string[];
}

/**
 * exovoice's layers, lowest first. A module may import modules of its own
 * layer and of the layers named in `mayImport`; nothing else.
 */
export const LAYERS: readonly Layer[] = [
  {
    name: "foundation",
    paths: [
      "std/",
      "src/env_values.ts",
      "src/log.ts",
      "src/call/clock.ts",
      "deno.json",
    ],
    mayImport: [],
  },
  { name: "audio", paths: ["src/audio/"], mayImport: ["foundation"] },
  { name: "exotel", paths: ["src/exotel/"], mayImport: ["foundation"] },
  { name: "http", paths: ["src/http/"], mayImport: ["foundation"] },
  {
    name: "call",
    paths: ["src/call/"],
    mayImport: ["audio", "exotel", "foundation"],
  },
  {
    name: "providers",
    paths: ["src/providers/"],
    mayImport: ["audio", "http", "foundation"],
  },
  {
    name: "records",
    paths: ["src/records/"],
    mayImport: ["call", "audio", "exotel", "foundation"],
  },
  {
    name: "instances",
    paths: ["src/instances/"],
    mayImport: ["call", "foundation"],
  },
  {
    name: "metrics",
    paths: ["src/metrics/"],
    mayImport: ["call", "records", "providers", "foundation"],
  },
  {
    name: "webhooks",
    paths: ["src/webhooks/"],
    mayImport: ["http", "metrics", "records", "foundation"],
  },
  {
    name: "config",
    paths: ["src/config.ts", "src/startup_checks.ts"],
    mayImport: ["audio", "exotel", "http", "webhooks", "foundation"],
  },
  {
    name: "bots",
    paths: ["src/bots/"],
    mayImport: ["call", "providers", "audio", "exotel", "http", "foundation"],
  },
  {
    name: "routes",
    paths: ["src/routes/"],
    mayImport: [
      "bots",
      "call",
      "records",
      "metrics",
      "instances",
      "webhooks",
      "providers",
      "config",
      "http",
      "audio",
      "exotel",
      "foundation",
    ],
  },
  {
    name: "console",
    paths: ["src/console/"],
    mayImport: [
      "routes",
      "bots",
      "call",
      "records",
      "metrics",
      "instances",
      "config",
      "http",
      "audio",
      "foundation",
    ],
  },
  {
    name: "server",
    paths: [
      "main.ts",
      "mod.ts",
      "src/server.ts",
      "src/serve.ts",
      "src/listener_reporter.ts",
      "src/startup_warnings.ts",
    ],
    mayImport: ["*"],
  },
];

/** An import that breaks the layering. */
export interface LayerViolation {
  /** The importing module. */
  from: string;
  /** The imported module. */
  to: string;
  /** The importer's layer; undefined when it has none. */
  fromLayer?: string;
  /** The imported module's layer; undefined when it has none. */
  toLayer?: string;
}

/**
 * The layer `path` belongs to: the one with the longest matching path, or
 * undefined.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(layerOf("src/call/player.ts", LAYERS)?.name, "call");
 * assertEquals(layerOf("src/nowhere/x.ts", LAYERS), undefined);
 * ```
 */
export function layerOf(
  path: string,
  layers: readonly Layer[],
): Layer | undefined {
  let found: Layer | undefined;
  let length = -1;
  for (const layer of layers) {
    for (const prefix of layer.paths) {
      const matches = prefix.endsWith("/")
        ? path.startsWith(prefix)
        : path === prefix;
      if (matches && prefix.length > length) {
        found = layer;
        length = prefix.length;
      }
    }
  }
  return found;
}

/**
 * Every import in `graph` that goes where its layer may not, and every
 * import from or to a module under no layer.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const graph = new Map([
 *   ["src/call/call.ts", ["src/bots/bot.ts", "src/audio/pcm.ts"]],
 * ]);
 * assertEquals(findLayerViolations(graph, LAYERS), [
 *   { from: "src/call/call.ts", to: "src/bots/bot.ts", fromLayer: "call", toLayer: "bots" },
 * ]);
 * ```
 */
export function findLayerViolations(
  graph: ImportGraph,
  layers: readonly Layer[],
): LayerViolation[] {
  const violations: LayerViolation[] = [];
  for (const [from, imports] of graph) {
    const fromLayer = layerOf(from, layers);
    for (const to of imports) {
      const toLayer = layerOf(to, layers);
      const allowed = fromLayer !== undefined && toLayer !== undefined &&
        (fromLayer === toLayer || fromLayer.mayImport.includes("*") ||
          fromLayer.mayImport.includes(toLayer.name));
      if (allowed) continue;
      const violation: LayerViolation = { from, to };
      if (fromLayer) violation.fromLayer = fromLayer.name;
      if (toLayer) violation.toLayer = toLayer.name;
      violations.push(violation);
    }
  }
  return violations;
}

/**
 * The import cycles in `graph`, each as the modules around it, starting and
 * ending with the same module. Each cycle is one that a depth-first walk
 * closes: every strongly connected group of modules yields at least one.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const graph = new Map([
 *   ["a.ts", ["b.ts"]],
 *   ["b.ts", ["c.ts"]],
 *   ["c.ts", ["a.ts"]],
 * ]);
 * assertEquals(findCycles(graph), [["a.ts", "b.ts", "c.ts", "a.ts"]]);
 * ```
 */
export function findCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Map<string, number>();
  const visit = (module: string): void => {
    onPath.set(module, path.length);
    path.push(module);
    for (const next of graph.get(module) ?? []) {
      const at = onPath.get(next);
      if (at !== undefined) cycles.push([...path.slice(at), next]);
      else if (!done.has(next)) visit(next);
    }
    path.pop();
    onPath.delete(module);
    done.add(module);
  };
  for (const module of [...graph.keys()].sort()) {
    if (!done.has(module)) visit(module);
  }
  return cycles;
}

/** The part of `deno info --json` read here. */
interface DenoInfo {
  modules: Array<{
    specifier: string;
    dependencies?: Array<{
      code?: { specifier?: string };
      type?: { specifier?: string };
    }>;
  }>;
}

/** Options of {@linkcode loadImportGraph}. */
export interface LoadOptions {
  /** The project's root directory; the current one by default. */
  root?: string;
  /** A folder whose modules are all checked, reached from the roots or not; `src` by default. */
  sources?: string;
}

/**
 * Reads the import graph of `roots` (paths relative to the project root)
 * with `deno info --json`, then of every module under `options.sources`
 * they do not reach. Only the project's own modules are kept; type-only
 * imports count like the others.
 */
export async function loadImportGraph(
  roots: readonly string[],
  options: LoadOptions = {},
): Promise<ImportGraph> {
  const root = await Deno.realPath(options.root ?? ".");
  const graph: ImportGraph = new Map();
  for (const module of roots) await addModule(graph, root, module);
  const modules = await listFiles(options.sources ?? "src", {
    match: /(?<!\.d)\.(ts|tsx|mts)$/,
    root,
  });
  for (const module of modules) {
    if (!graph.has(module)) await addModule(graph, root, module);
  }
  return graph;
}

async function addModule(
  graph: ImportGraph,
  root: string,
  module: string,
): Promise<void> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", module],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `deno info failed for "${module}": ${
        new TextDecoder().decode(output.stderr).trim()
      }`,
    );
  }
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as DenoInfo;
  const prefix = `${new URL(`file://${root}/`)}`;
  const local = (specifier: string | undefined) =>
    specifier?.startsWith(prefix) ? specifier.slice(prefix.length) : undefined;
  for (const entry of info.modules) {
    const from = local(entry.specifier);
    if (from === undefined || graph.has(from)) continue;
    const imports = new Set<string>();
    for (const dependency of entry.dependencies ?? []) {
      for (const target of [dependency.code, dependency.type]) {
        const to = local(target?.specifier);
        if (to !== undefined) imports.add(to);
      }
    }
    graph.set(from, [...imports].sort());
  }
}

/** What {@linkcode describeProblems} reports. */
export interface Findings {
  /** Import cycles, as {@linkcode findCycles} answers them. */
  cycles: readonly string[][];
  /** Imports against the layers, as {@linkcode findLayerViolations} answers them. */
  violations: readonly LayerViolation[];
}

/**
 * What a check found, as lines for a person; empty when all is well.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(describeProblems({ cycles: [["a.ts", "b.ts", "a.ts"]], violations: [] }, LAYERS), [
 *   "Import cycle: a.ts → b.ts → a.ts",
 * ]);
 * ```
 */
export function describeProblems(
  findings: Findings,
  layers: readonly Layer[],
): string[] {
  const { cycles, violations } = findings;
  const lines: string[] = [];
  for (const cycle of cycles) lines.push(`Import cycle: ${cycle.join(" → ")}`);
  for (const { from, to, fromLayer, toLayer } of violations) {
    lines.push(
      fromLayer === undefined || toLayer === undefined
        ? `Module under no layer: "${
          fromLayer === undefined ? from : to
        }" (imported as ${from} → ${to}); add it to LAYERS in tools/check_imports.ts`
        : `Import against the layers: ${from} (${fromLayer}) → ${to} (${toLayer}); ${fromLayer} may import ${
          [...layers.find((layer) => layer.name === fromLayer)?.mayImport ?? []]
            .join(", ") || "nothing outside itself"
        }`,
    );
  }
  return lines;
}

if (import.meta.main) {
  const graph = await loadImportGraph(["main.ts", "mod.ts"]);
  const problems = describeProblems({
    cycles: findCycles(graph),
    violations: findLayerViolations(graph, LAYERS),
  }, LAYERS);
  if (problems.length > 0) {
    // deno-lint-ignore no-console -- a CLI's report
    for (const line of problems) console.error(line);
    // deno-lint-ignore no-console -- a CLI's report
    console.error(
      `${problems.length} import problem(s) in ${graph.size} modules`,
    );
    Deno.exit(1);
  }
  // deno-lint-ignore no-console -- a CLI's report
  console.log(
    `Imports OK: ${graph.size} modules, no cycle, every import down the layers`,
  );
}
