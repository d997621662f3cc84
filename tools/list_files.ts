/**
 * Lists the files of a folder tree, for the checks and tests that scan the
 * source.
 *
 * @module
 */

/** Options of {@linkcode listFiles}. */
export interface ListFilesOptions {
  /** Which files to keep, by name. */
  match: RegExp;
  /** The folder that `dir` and the paths returned are relative to; `.` by default. */
  root?: string;
}

/**
 * Paths (relative to `root`) of the files under `dir` whose names match,
 * sorted. Names starting with `.` are skipped.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { listFiles } from "./list_files.ts";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/src/call`, { recursive: true });
 * await Deno.writeTextFile(`${root}/src/call/call.ts`, "");
 * await Deno.writeTextFile(`${root}/src/a.ts`, "");
 * await Deno.writeTextFile(`${root}/src/notes.md`, "");
 * assertEquals(await listFiles("src", { match: /\.ts$/, root }), [
 *   "src/a.ts",
 *   "src/call/call.ts",
 * ]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function listFiles(
  dir: string,
  options: ListFilesOptions,
): Promise<string[]> {
  const root = options.root ?? ".";
  const files: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${dir}`)) {
    if (entry.name.startsWith(".")) continue;
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) files.push(...await listFiles(path, options));
    else if (entry.isFile && options.match.test(entry.name)) files.push(path);
  }
  return files.sort();
}
