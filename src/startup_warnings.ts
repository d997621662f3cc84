/**
 * Settings that start but deserve a warning: a socket open to anyone on a
 * public address, admin endpoints without `ADMIN_TOKEN`, a descriptor limit
 * below what `MAX_SESSIONS` needs.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Config } from "./config.ts";
import {
  descriptorsNeeded,
  readDescriptorLimit,
} from "./metrics/process_descriptors.ts";

const log = getLogger(["exovoice", "server"]);

const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Warns when a non-loopback `HOST` leaves the voicebot socket or the admin endpoints open. */
export function warnIfExposed(config: Config): void {
  if (LOOPBACK_HOST.test(config.host)) return;
  if (
    !config.wsToken && !config.wsBasicAuth && config.ipAllowList.length === 0
  ) {
    log.warn(
      "The voicebot socket is open to anyone on {host}: set EXOTEL_WS_BASIC_AUTH or EXOTEL_IP_ALLOWLIST",
      { host: config.host },
    );
  }
  if (!config.adminToken) {
    log.warn(
      "ADMIN_TOKEN is not set: /voicebot/sessions and /call, which show phone numbers, are open on {host}",
      { host: config.host },
    );
  }
}

/**
 * Warns when the process's descriptor limit is below what `MAX_SESSIONS`
 * needs, or says it could not read it.
 */
export function warnIfFewDescriptors(
  config: Config,
  options: { agent: boolean },
): void {
  const needed = descriptorsNeeded({
    maxSessions: config.maxSessions,
    agent: options.agent,
    recording: config.recordingsDir !== undefined,
  });
  const limit = readDescriptorLimit();
  if (limit === undefined) {
    log.info(
      "Could not read the file descriptor limit (Deno reads /proc only with --allow-all): MAX_SESSIONS={maxSessions} needs about {needed}; check ulimit -n or LimitNOFILE",
      { maxSessions: config.maxSessions, needed },
    );
  } else if (limit < needed) {
    log.warn(
      "The file descriptor limit is {limit}, below the {needed} that MAX_SESSIONS={maxSessions} needs: raise it (ulimit -n, LimitNOFILE, docker --ulimit nofile) or lower MAX_SESSIONS",
      { limit, needed, maxSessions: config.maxSessions },
    );
  }
}
