/**
 * Run without `--allow-ffi` by `silero_vad_test.ts`: prints the runtime
 * `auto` chose and what loading the native runtime threw.
 */
import { loadSileroModel } from "../../src/audio/silero_vad.ts";

const auto = await loadSileroModel();
let native = "loaded";
try {
  await loadSileroModel({ runtime: "native" });
} catch (error) {
  native = error instanceof Error ? error.name : String(error);
}
// deno-lint-ignore no-console
console.log(auto.runtime, native);
