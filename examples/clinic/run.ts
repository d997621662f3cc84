/**
 * The clinic example in one command (`deno task clinic`): the in-memory
 * appointment API and exovoice answering with `examples/clinic/agent.yaml`.
 * Vendor keys (`DEEPGRAM_API_KEY`, `LLM_API_KEY`, …) come from `.env` or
 * the environment, as for `deno task start`.
 *
 * @module
 */

import { serve } from "../../mod.ts";
import { startClinicApi } from "./clinic_api.ts";

const apiKey = Deno.env.get("CLINIC_API_KEY") ?? "clinic-demo-key";
const clinic = startClinicApi({
  apiKey,
  port: Number(Deno.env.get("CLINIC_API_PORT") ?? 8787),
});
const server = await serve({
  env: {
    BOT: "agent",
    AGENT_FILE: new URL("./agent.yaml", import.meta.url).pathname,
    CLINIC_API_URL: clinic.url,
    CLINIC_API_KEY: apiKey,
  },
});
// deno-lint-ignore no-console
console.log(`Clinic API on ${clinic.url}; voicebot on ${server.url}`);
const stop = async () => {
  await server.shutdown();
  await clinic.server.shutdown();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
