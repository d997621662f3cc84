/**
 * Sessions as a call fills them, for tests of what reads them.
 *
 * @module
 */

import type { Session } from "../../src/call/registry.ts";
import { createPlayoutCounters } from "../../src/call/player.ts";

/** A started session with plausible values, overridden by `fields`. */
export function makeSession(
  fields: Partial<Omit<Session, "id" | "connectedAt">> & {
    id?: string;
    connectedAt?: number;
  } = {},
): Session {
  return {
    id: crypto.randomUUID(),
    callId: "CA1",
    streamSid: "S1",
    accountSid: "AC1",
    from: "+919876543210",
    to: "08047491899",
    customParameters: { lang: "en" },
    sampleRate: 8000,
    encoding: "pcm",
    bot: "echo",
    remoteAddress: "127.0.0.1",
    connectedAt: Date.parse("2025-03-01T10:00:00Z"),
    lastActivity: Date.parse("2025-03-01T10:00:30Z"),
    sequenceNumber: 42,
    state: "started",
    framesIn: 0,
    bytesIn: 0,
    badFrames: {},
    audioChunksBuffered: 0,
    dtmfDigits: "",
    playout: createPlayoutCounters(),
    end() {},
    ...fields,
  };
}
