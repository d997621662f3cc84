/**
 * `GET /metrics`: Prometheus metrics in the text exposition format 0.0.4.
 *
 * @module
 */

import type { ExovoiceMetrics } from "../metrics/exovoice_metrics.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/prometheus.ts";

/** Answers every metric as `text/plain; version=0.0.4`. */
export async function handleMetrics(
  _request: Request,
  metrics: ExovoiceMetrics,
): Promise<Response> {
  return new Response(await metrics.render(), {
    headers: {
      "content-type": PROMETHEUS_CONTENT_TYPE,
      "cache-control": "no-store",
    },
  });
}
