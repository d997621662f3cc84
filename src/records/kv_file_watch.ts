/**
 * Notices when the Deno KV file under a running server is deleted or
 * replaced. SQLite keeps writing to a deleted file's open inode, so every
 * write still succeeds while nothing written can ever be read again: only
 * the file's identity tells.
 *
 * @module
 */

/**
 * Watches the KV file at `path`, as identified when {@linkcode KvFileWatch.start}
 * read it.
 *
 * @example
 * ```ts
 * import { assertEquals, assertStringIncludes } from "@std/assert";
 *
 * const dir = await Deno.makeTempDir();
 * const kv = await Deno.openKv(`${dir}/exovoice.kv`);
 * const watch = await KvFileWatch.start(`${dir}/exovoice.kv`);
 * assertEquals(await watch?.check(), undefined); // still the file opened
 * await Deno.remove(`${dir}/exovoice.kv`);
 * assertStringIncludes((await watch?.check()) ?? "", "was deleted");
 * kv.close();
 * await Deno.remove(dir, { recursive: true });
 * assertEquals(await KvFileWatch.start(":memory:"), undefined);
 * ```
 */
export class KvFileWatch {
  #path: string;
  #identity: string;

  private constructor(path: string, identity: string) {
    this.#path = path;
    this.#identity = identity;
  }

  /**
   * Reads the identity of the file at `path` (opened already). Resolves
   * undefined for `:memory:`, no path, or a file that cannot be read.
   */
  static async start(
    path: string | undefined,
  ): Promise<KvFileWatch | undefined> {
    if (path === undefined || path === ":memory:") return undefined;
    const identity = await fileIdentity(path);
    return identity === undefined ? undefined : new KvFileWatch(path, identity);
  }

  /** What is wrong with the file now, or undefined when it is the one opened. */
  async check(): Promise<string | undefined> {
    const identity = await fileIdentity(this.#path);
    if (identity === undefined) {
      return `KV file "${this.#path}" was deleted: records written now are lost; restart the server`;
    }
    if (identity !== this.#identity) {
      return `KV file "${this.#path}" was replaced: records written now go to the old file; restart the server`;
    }
    return undefined;
  }
}

async function fileIdentity(path: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(path);
    return `${info.dev}:${info.ino}`;
  } catch {
    return undefined;
  }
}
