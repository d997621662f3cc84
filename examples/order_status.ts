/**
 * Library mode: an agent declared in TypeScript whose tool is a function —
 * it looks an order up in a (here, in-memory) store and the agent tells
 * the caller where their order is.
 *
 * Run: `deno task example:order_status` (vendor keys from `.env`, as for
 * `deno task start`), then point Exotel's Voicebot applet at
 * `wss://YOUR_HOST/voicebot/ws`.
 *
 * @module
 */

import { type CodeTool, defineAgent, serve } from "../mod.ts";

/** An order as the shop's system keeps it. */
export interface Order {
  /** E.g. `A1001`. */
  id: string;
  /** The number it was placed from: a caller hears only their own orders. */
  phone: string;
  /** `placed`, `packed`, `shipped`, `delivered`. */
  status: string;
  /** The courier's estimate, `YYYY-MM-DD`. */
  expectedDelivery?: string;
}

/** The shop's orders (a database or an HTTP API in a real deployment). */
export const ORDERS: Map<string, Order> = new Map([
  ["A1001", {
    id: "A1001",
    phone: "+919812345678",
    status: "shipped",
    expectedDelivery: "2026-12-05",
  }],
  ["A1002", { id: "A1002", phone: "+919800000000", status: "packed" }],
]);

/** The tool: the model gives an order number, the caller's number comes from the call. */
export const orderStatus: CodeTool = {
  name: "order_status",
  description:
    "Look up the status of one of the caller's orders by its order number, such as A1001.",
  parameters: {
    type: "object",
    properties: {
      orderId: {
        type: "string",
        pattern: "^[A-Za-z][0-9]{4}$",
        description: "The order number, a letter and four digits.",
      },
    },
    required: ["orderId"],
    additionalProperties: false,
  },
  say: "Let me look that up.",
  run({ orderId }, call) {
    const order = ORDERS.get(String(orderId).toUpperCase());
    // Someone else's order is as good as unknown to this caller.
    if (order === undefined || order.phone !== call.from) {
      return { found: false, orderId };
    }
    return { found: true, ...order, phone: undefined };
  },
};

/** The shop's voice agent. */
export const agent = defineAgent({
  name: "orders",
  prompt:
    "You are the order desk of Kirana Express. Today is {{date}}. Ask for the order number, look it up with order_status, and tell the caller its status and expected delivery in one or two sentences. Never guess an order's status.",
  greeting: "Kirana Express order desk. What is your order number?",
  tools: [orderStatus],
});

if (import.meta.main) {
  const server = await serve({ agent });
  // deno-lint-ignore no-console
  console.log(`Order desk on ${server.url}`);
}
