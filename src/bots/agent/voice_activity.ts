/**
 * The agent's voice-activity detector per call, as `VAD` and `VAD_RUNTIME`
 * ask: Silero on native ONNX Runtime, else on WebAssembly, else the energy
 * detector. A model that cannot load is logged and the next one serves.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { systemClock } from "../../call/clock.ts";
import {
  loadSileroModel,
  sileroDetector,
  SileroLoadError,
  type SileroRuntime,
  type SileroRuntimeChoice,
} from "../../audio/silero_vad.ts";
import {
  energyDetector,
  type SpeechDetectorFactory,
  type SpeechDetectorKind,
} from "../../audio/speech_detector.ts";

const log = getLogger(["exovoice", "agent", "vad"]);

/**
 * How long a Silero run waits for more calls' windows, in ms. Calls' frames
 * come on their own clocks, so without a wait most runs hold a few windows;
 * 8 ms gathers full batches (32) once about 130 callers talk at once, and a caller's
 * speech onset or end is seen at most that much later, a quarter of one
 * 32 ms window.
 */
export const SILERO_GATHER_MS = 8;

/** What {@linkcode loadSpeechDetectors} chose. */
export interface AgentSpeechDetectors {
  /** Creates each call's detector. */
  create: SpeechDetectorFactory;
  /** The detector in use. */
  kind: SpeechDetectorKind;
  /** Silero's runtime, when Silero is in use. */
  runtime?: SileroRuntime;
}

/** Options of {@linkcode loadSpeechDetectors}. */
export interface LoadSpeechDetectorsOptions {
  /** `VAD`. */
  vad: SpeechDetectorKind;
  /** `VAD_RUNTIME`. */
  vadRuntime: SileroRuntimeChoice;
  /** Loads the model; replaceable in tests. */
  load?: typeof loadSileroModel;
}

/**
 * Loads the detector the configuration asks for. With `VAD=silero` and
 * `VAD_RUNTIME=auto`, a native runtime that fails falls back to
 * WebAssembly; when Silero cannot load at all, the energy detector serves
 * and a warning says why. Never throws.
 *
 * @example
 * ```ts ignore
 * const detectors = await loadSpeechDetectors({ vad: "silero", vadRuntime: "auto" });
 * createAgentBotFactory(config, { detectors: detectors.create });
 * ```
 */
export async function loadSpeechDetectors(
  options: LoadSpeechDetectorsOptions,
): Promise<AgentSpeechDetectors> {
  if (options.vad === "energy") {
    return { create: energyDetector, kind: "energy" };
  }
  const load = options.load ?? loadSileroModel;
  const tries: SileroRuntimeChoice[] = options.vadRuntime === "auto"
    ? ["auto", "wasm"]
    : [options.vadRuntime];
  for (const runtime of tries) {
    try {
      const model = await load({
        runtime,
        gatherMs: SILERO_GATHER_MS,
        schedule: (callback, ms) => systemClock.schedule(callback, ms),
        onError: (error) =>
          log.error(
            "Silero VAD run failed; its windows count as silence: {error}",
            {
              error,
            },
          ),
      });
      log.info("Voice activity: Silero VAD on ONNX Runtime ({runtime})", {
        runtime: model.runtime,
      });
      return {
        create: sileroDetector(model),
        kind: "silero",
        runtime: model.runtime,
      };
    } catch (error) {
      if (!(error instanceof SileroLoadError)) throw error;
      log.warn("Silero VAD could not load ({runtime}): {message}", {
        runtime: error.runtime,
        message: error.message,
      });
      // "auto" already chose WebAssembly: no need to try it twice.
      if (error.runtime === "wasm") break;
    }
  }
  log.warn("Voice activity: falling back to the energy detector");
  return { create: energyDetector, kind: "energy" };
}
