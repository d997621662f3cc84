// Small DOM helpers shared by the console's pages. No framework: the
// console is a handful of views, and plain modules need no build step.

export const STAGES = [
  ["stt_final", "STT final"],
  ["llm_first_token", "LLM first token"],
  ["tts_first_byte", "TTS first byte"],
  ["first_media", "First media"],
  ["first_mark", "First mark"],
];

const ROLE_NAMES = { caller: "Caller", bot: "Bot", tool: "Tool call" };

/** Creates an element: h("div", { class: "x", onclick }, child, "text"). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "style") Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Thrown by api() with the server's JSON error. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Fetches JSON from the console API; writes send JSON. */
export async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(
      response.status,
      data?.error?.message ?? response.statusText,
    );
  }
  return data;
}

export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  return m >= 60
    ? `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}

export function when(iso) {
  const date = new Date(iso);
  return date.toLocaleString(undefined, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** A transcript: caller and bot lines, what was heard when cut off, the partial. */
export function transcriptView(entries, partial = "") {
  const lines = entries.map((entry) =>
    h(
      "div",
      { class: `line ${entry.role}` },
      h(
        "span",
        { class: "who" },
        // Lines other than the caller's and the bot's (tool calls, when the
        // agent records them) are shown under their role.
        ROLE_NAMES[entry.role] ?? entry.role,
        entry.interrupted ? " · barged in" : "",
      ),
      entry.text,
      entry.interrupted
        ? h("span", { class: "heard" }, `Heard: “${entry.heardText ?? ""}”`)
        : null,
    )
  );
  if (partial) {
    lines.push(
      h(
        "div",
        { class: "line caller partial" },
        h("span", { class: "who" }, "Caller · hearing…"),
        partial,
      ),
    );
  }
  if (lines.length === 0) {
    lines.push(h("p", { class: "empty" }, "Nothing said yet."));
  }
  const box = h(
    "div",
    { class: "transcript", "data-testid": "transcript" },
    lines,
  );
  queueMicrotask(() => box.scrollTop = box.scrollHeight);
  return box;
}

/** Each turn's latency by stage, as stacked bars on one scale. */
export function latencyBars(turns) {
  if (!turns.length) {
    return h("p", { class: "empty small" }, "No turns timed yet.");
  }
  const max = Math.max(
    1,
    ...turns.flatMap((t) => Object.values(t.latenciesMs)),
  );
  const rows = turns.map((turn) => {
    const track = h("div", { class: "track" });
    let previous = 0;
    for (const [stage, label] of STAGES) {
      const ms = turn.latenciesMs[stage];
      if (ms === undefined) continue;
      const seg = h("div", {
        class: `seg s-${stage}`,
        title: `${label}: ${Math.round(ms)} ms`,
      });
      seg.style.left = `${(previous / max) * 100}%`;
      seg.style.width = `${(Math.max(0, ms - previous) / max) * 100}%`;
      track.append(seg);
      previous = Math.max(previous, ms);
    }
    return h(
      "div",
      { class: "turn" },
      h("span", {}, `#${turn.turn}`),
      h(
        "div",
        { title: `${Math.round(previous)} ms to the last stage` },
        track,
      ),
    );
  });
  return h(
    "div",
    { class: "bars", "data-testid": "latency" },
    rows,
    legend(),
    h(
      "div",
      { class: "small muted" },
      `Scale: 0 – ${Math.round(max)} ms from the end of the caller's speech`,
    ),
  );
}

export function legend() {
  return h(
    "div",
    { class: "legend" },
    STAGES.map(([stage, label]) =>
      h("span", {}, h("i", { class: `s-${stage}` }), label)
    ),
  );
}

export function badge(activity) {
  return h(
    "span",
    { class: `badge ${activity}`, "data-testid": "activity" },
    activity,
  );
}
