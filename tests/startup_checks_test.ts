/**
 * Startup failures name the variable at fault, leak nothing, and reach the
 * user as one line instead of a stack trace.
 */
import {
  assert,
  assertEquals,
  assertFalse,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { ConfigError } from "../src/config.ts";
import { serve } from "./fakes/sockets.ts";
import { SERVER_FLAGS } from "./fakes/server_process.ts";

const TLS = new URL("./fixtures/tls/", import.meta.url);
const CERT = new URL("localhost.crt", TLS).pathname;
const KEY = new URL("localhost.key", TLS).pathname;

async function refused(
  env: Record<string, string>,
  variable: string,
  message: string,
): Promise<void> {
  const error = await assertRejects(() => serve(env), ConfigError, message);
  assertEquals(error.variable, variable);
}

Deno.test("an unreadable TLS file names TLS_CERT_FILE or TLS_KEY_FILE and its path", async () => {
  const missing = "/nonexistent/exovoice/cert.pem";
  await refused(
    { TLS_CERT_FILE: missing, TLS_KEY_FILE: KEY },
    "TLS_CERT_FILE",
    `Invalid TLS_CERT_FILE "${missing}": cannot read it`,
  );
  await refused(
    { TLS_CERT_FILE: CERT, TLS_KEY_FILE: missing },
    "TLS_KEY_FILE",
    `Invalid TLS_KEY_FILE "${missing}"`,
  );
});

Deno.test("a TLS file that is not PEM names the variable", async () => {
  const garbage = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(garbage, "not a certificate");
    await refused(
      { TLS_CERT_FILE: garbage, TLS_KEY_FILE: KEY },
      "TLS_CERT_FILE",
      "Invalid TLS_CERT_FILE",
    );
    await refused(
      { TLS_CERT_FILE: CERT, TLS_KEY_FILE: garbage },
      "TLS_KEY_FILE",
      "Invalid TLS_KEY_FILE",
    );
  } finally {
    await Deno.remove(garbage);
  }
});

Deno.test("a KV_PATH that cannot be opened names KV_PATH", async () => {
  const file = await Deno.makeTempFile();
  try {
    // A folder where a file is: no user, root included, can create it.
    await refused(
      { KV_PATH: `${file}/calls.kv` },
      "KV_PATH",
      `Invalid KV_PATH "${file}/calls.kv": cannot open it`,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("a HOST that is not this machine's names HOST; a PORT in use names PORT", async () => {
  // 192.0.2.1 is TEST-NET-1: never assigned to a local interface, no lookup.
  await refused({ HOST: "192.0.2.1" }, "HOST", 'Invalid HOST "192.0.2.1"');
  await using first = await serve();
  await refused(
    { PORT: String(first.addr.port) },
    "PORT",
    `Invalid PORT "${first.addr.port}": another process is listening`,
  );
});

Deno.test("RECORDINGS_DIR is created at startup, and one that cannot be written names RECORDINGS_DIR", async () => {
  const root = await Deno.makeTempDir();
  try {
    const nested = `${root}/a/b/recordings`;
    {
      await using _server = await serve({ RECORDINGS_DIR: nested });
      assert((await Deno.stat(nested)).isDirectory);
      assertEquals(
        await Array.fromAsync(Deno.readDir(nested)),
        [],
        "the write check leaves nothing behind",
      );
    }
    const file = `${root}/plain-file`;
    await Deno.writeTextFile(file, "");
    await refused(
      { RECORDINGS_DIR: `${file}/recordings` },
      "RECORDINGS_DIR",
      `Invalid RECORDINGS_DIR "${file}/recordings"`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("main.ts reports a bad KV_PATH in one line naming it, with no stack trace, and exits 1", async () => {
  const file = await Deno.makeTempFile();
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...SERVER_FLAGS, "main.ts"],
      cwd: new URL("../", import.meta.url),
      env: { HOST: "127.0.0.1", PORT: "0", KV_PATH: `${file}/calls.kv` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 1, stderr);
    assertStringIncludes(
      stderr,
      `exovoice: Invalid KV_PATH "${file}/calls.kv"`,
    );
    assertFalse(/\n\s+at /.test(stderr), stderr);
  } finally {
    await Deno.remove(file);
  }
});
