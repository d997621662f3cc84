/**
 * Regenerates the IVR example's prompts from {@linkcode PROMPT_TEXTS}: a
 * development-time tool, needing `espeak-ng` and `sox` (Debian:
 * `apt-get install espeak-ng sox`). The example itself only reads the WAV
 * files committed next to this script.
 *
 * ```sh
 * deno run --allow-run --allow-read --allow-write examples/ivr/make_prompts.ts
 * ```
 *
 * @module
 */

import { PROMPT_TEXTS } from "./prompts.ts";

async function run(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, {
    args,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `${command} failed (${code}): ${new TextDecoder().decode(stderr)}`,
    );
  }
}

if (import.meta.main) {
  const dir = new URL(".", import.meta.url).pathname;
  const raw = await Deno.makeTempFile({ suffix: ".wav" });
  try {
    for (const [name, text] of Object.entries(PROMPT_TEXTS)) {
      await run("espeak-ng", ["-v", "en-us", "-s", "160", "-w", raw, text]);
      // 8 kHz 16-bit mono, trimmed of silence at both ends, peaks at -3 dBFS.
      await run("sox", [
        raw,
        "-r",
        "8000",
        "-c",
        "1",
        "-b",
        "16",
        `${dir}${name}.wav`,
        "silence",
        "1",
        "0.02",
        "0.5%",
        "reverse",
        "silence",
        "1",
        "0.02",
        "0.5%",
        "reverse",
        "norm",
        "-3",
      ]);
    }
  } finally {
    await Deno.remove(raw);
  }
}
