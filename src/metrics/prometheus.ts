/**
 * The Prometheus text exposition format, as `prom-client` renders it.
 *
 * @module
 */

import { Registry } from "prom-client";

/**
 * The `Content-Type` of the text {@linkcode MetricsRegistry.render} returns:
 * `text/plain; version=0.0.4; charset=utf-8`.
 */
export const PROMETHEUS_CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;
