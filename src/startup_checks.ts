/**
 * What the server checks as it starts, each failure a
 * {@linkcode ConfigError} naming the variable at fault instead of a stack
 * trace: the TLS files, the recordings folder, the KV file, and the address
 * to listen on.
 *
 * @module
 */

import { ConfigError } from "./env_values.ts";

/** PEM text for `Deno.serve`. */
export interface TlsFiles {
  /** The certificate chain. */
  cert: string;
  /** The private key. */
  key: string;
}

/**
 * Reads `TLS_CERT_FILE` and `TLS_KEY_FILE`.
 *
 * @throws {ConfigError} naming the file's variable when it cannot be read.
 */
export async function readTlsFiles(
  files: { certFile: string; keyFile: string },
): Promise<TlsFiles> {
  return {
    cert: await readNamed("TLS_CERT_FILE", files.certFile),
    key: await readNamed("TLS_KEY_FILE", files.keyFile),
  };
}

async function readNamed(variable: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(
      variable,
      `Invalid ${variable} "${path}": cannot read it (${reason(error)})`,
    );
  }
}

/**
 * Makes sure `RECORDINGS_DIR` exists (creating it) and that the server can
 * write there, by writing and removing a small file.
 *
 * @throws {ConfigError} naming `RECORDINGS_DIR` otherwise.
 */
export async function checkRecordingsDir(dir: string): Promise<void> {
  const probe = `${dir.replace(/\/+$/, "")}/.exovoice-write-check-${
    crypto.randomUUID().slice(0, 8)
  }`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (error) {
    throw new ConfigError(
      "RECORDINGS_DIR",
      `Invalid RECORDINGS_DIR "${dir}": expected a folder the server can create and write to (${
        reason(error)
      })`,
    );
  }
}

/**
 * Runs `open` for the KV at `path`.
 *
 * @throws {ConfigError} naming `KV_PATH` when it fails.
 */
export async function openNamedKv(
  path: string | undefined,
  open: (path: string | undefined) => Promise<Deno.Kv>,
): Promise<Deno.Kv> {
  try {
    return await open(path);
  } catch (error) {
    throw new ConfigError(
      "KV_PATH",
      `Invalid KV_PATH "${
        path ?? "(the runtime's default)"
      }": cannot open it (${
        reason(error)
      }); expected a file path in a writable folder, or :memory:`,
    );
  }
}

/**
 * The {@linkcode ConfigError} for an error `Deno.serve` threw while starting
 * to listen on `host` and `port`, or `error` itself when it is none of ours.
 */
export function listenError(
  error: unknown,
  options: { host: string; port: number; tls: boolean },
): unknown {
  const { host, port } = options;
  if (error instanceof Deno.errors.AddrInUse) {
    return new ConfigError(
      "PORT",
      `Invalid PORT "${port}": another process is listening on ${host}:${port}`,
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new ConfigError(
      "PORT",
      `Invalid PORT "${port}": not allowed to listen there (${
        reason(error)
      }); ports below 1024 need privileges`,
    );
  }
  if (
    error instanceof Deno.errors.AddrNotAvailable ||
    (error instanceof Error && /lookup address/i.test(error.message))
  ) {
    return new ConfigError(
      "HOST",
      `Invalid HOST "${host}": expected an address of this machine such as 0.0.0.0, 127.0.0.1 or :: (${
        reason(error)
      })`,
    );
  }
  if (options.tls && error instanceof Deno.errors.InvalidData) {
    const variable = /key/i.test(error.message)
      ? "TLS_KEY_FILE"
      : "TLS_CERT_FILE";
    return new ConfigError(
      variable,
      `Invalid ${variable}: expected PEM that matches its pair in TLS_CERT_FILE and TLS_KEY_FILE (${
        reason(error)
      })`,
    );
  }
  return error;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
