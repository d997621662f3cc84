// The console's pages: login, overview, live calls, history, a call's page.
// The softphone lives in softphone.js.
import {
  api,
  ApiError,
  badge,
  duration,
  h,
  latencyBars,
  STAGES,
  transcriptView,
  when,
} from "./ui.js";
import { renderSoftphone } from "./softphone.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const logoutButton = document.getElementById("logout");

/** Live calls by session id, kept current by the event stream. */
export const live = new Map();
const liveListeners = new Set();
let events;
let session;
let cleanupPage = () => {};
let ticker;

/** Calls `listener` whenever a live call changes; returns the unsubscribe. */
export function onLive(listener) {
  liveListeners.add(listener);
  return () => liveListeners.delete(listener);
}

function openEvents() {
  events?.close();
  events = new EventSource("/console/api/live");
  const changed = () => liveListeners.forEach((listener) => listener());
  events.addEventListener("snapshot", (e) => {
    live.clear();
    for (const call of JSON.parse(e.data).calls) live.set(call.id, call);
    changed();
  });
  events.addEventListener("call", (e) => {
    const { call } = JSON.parse(e.data);
    live.set(call.id, call);
    changed();
  });
  events.addEventListener("ended", (e) => {
    live.delete(JSON.parse(e.data).id);
    changed();
  });
  events.onerror = async () => {
    // A closed stream after a logout or expiry: back to the login form.
    if (events.readyState === EventSource.CLOSED) {
      const state = await api("/console/api/session").catch(() => undefined);
      if (state && !state.authenticated) {
        showLogin("Your session expired: log in again.");
      }
    }
  };
}

function showLogin(message = "") {
  // Stop whatever the page polled or played: a logged-out page that keeps
  // asking would count as failed logins against this address.
  events?.close();
  clearInterval(ticker);
  cleanupPage();
  cleanupPage = () => {};
  if (session) session.authenticated = false;
  nav.hidden = true;
  logoutButton.hidden = true;
  const error = h("p", { class: "error", role: "alert" }, message);
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "current-password",
    required: true,
    "aria-label": "Admin token",
    placeholder: "ADMIN_TOKEN",
  });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        try {
          await api("/console/login", {
            method: "POST",
            body: { token: input.value },
          });
          input.value = "";
          await start();
        } catch (e) {
          error.textContent = e.message;
        }
      },
    },
    h("label", {}, "Admin token", input),
    h("button", { class: "primary", type: "submit" }, "Log in"),
    error,
  );
  main.replaceChildren(
    h(
      "div",
      { class: "panel login" },
      h("h1", {}, "exovoice console"),
      h(
        "p",
        { class: "muted small" },
        "Log in with the server's ADMIN_TOKEN. It is sent once and never kept in the page or a URL.",
      ),
      form,
    ),
  );
  input.focus();
}

logoutButton.addEventListener("click", async () => {
  await api("/console/logout", { method: "POST", body: {} }).catch(() => {});
  showLogin("Logged out.");
});

async function start() {
  session = await api("/console/api/session");
  if (!session.authenticated) return showLogin();
  nav.hidden = false;
  logoutButton.hidden = session.open;
  openEvents();
  route();
}

globalThis.addEventListener(
  "hashchange",
  () => session?.authenticated && route(),
);

function route() {
  cleanupPage();
  cleanupPage = () => {};
  clearInterval(ticker);
  const hash = location.hash.replace(/^#\/?/, "") || "overview";
  const [page, id] = hash.split("/");
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset.page === page);
  }
  const pages = {
    overview,
    live: livePage,
    calls: id ? () => callPage(decodeURIComponent(id)) : history,
    softphone,
  };
  (pages[page] ?? overview)();
}

function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    return showLogin("Your session expired: log in again.");
  }
  main.replaceChildren(
    h("div", { class: "panel" }, h("p", { class: "error" }, error.message)),
  );
}

// Overview: live calls, calls per minute, latency percentiles, provider errors.
function overview() {
  const draw = async () => {
    try {
      const o = await api("/console/api/overview");
      const errors = o.providerErrors.filter((e) => e.count > 0);
      main.replaceChildren(
        h("h1", {}, "Overview"),
        overviewStats(o, errors),
        h(
          "div",
          { class: "grid" },
          callsPerMinutePanel(o),
          latencyPanel(o.latency),
        ),
        providerErrorsPanel(errors),
      );
    } catch (error) {
      fail(error);
    }
  };
  draw();
  ticker = setInterval(draw, 5000);
}

function stat(value, label, attributes = {}) {
  return h("div", { class: "stat" }, h("b", attributes, value), label);
}

function overviewStats(o, errors) {
  return h(
    "div",
    { class: "stats" },
    stat(
      o.liveCalls,
      o.liveCalls === 1 ? "live call" : "live calls",
      { "data-testid": "live-count" },
    ),
    stat(o.callsEnded, "calls in the last hour"),
    stat(o.callsPerMinute.at(-1), "this minute"),
    stat(errors.reduce((a, e) => a + e.count, 0), "provider errors"),
  );
}

function callsPerMinutePanel(o) {
  const max = Math.max(1, ...o.callsPerMinute);
  const cpm = h(
    "div",
    { class: "cpm", "aria-label": "Calls per minute, last hour" },
    o.callsPerMinute.map((n, i) => {
      const bar = h("div", { title: `${n} call(s), ${59 - i} min ago` });
      bar.style.height = `${(n / max) * 100}%`;
      return bar;
    }),
  );
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Calls per minute (last hour)"),
    cpm,
    h(
      "div",
      { class: "small muted" },
      Object.entries(o.outcomes).map(([k, v]) => `${k}: ${v}`).join(" · ") ||
        "No calls ended in the last hour.",
    ),
  );
}

function latencyPanel(latency) {
  const slowest = Math.max(1, ...latency.map((s) => s.p95 ?? 0));
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Turn latency p50 / p95 (ms, last hour)"),
    latency.map((s) => percentileRow(s, slowest)),
    h(
      "div",
      { class: "small muted" },
      "Solid: p50 · pale: p95, from the end of the caller's speech",
    ),
  );
}

function percentileRow(s, slowest) {
  const label = STAGES.find(([stage]) => stage === s.stage)[1];
  const track = h("div", { class: "track" });
  for (const [which, cls] of [["p95", "p95"], ["p50", "p50"]]) {
    if (s[which] === null) continue;
    const seg = h("div", { class: `seg s-${s.stage} ${cls}` });
    seg.style.left = "0";
    seg.style.width = `${(s[which] / slowest) * 100}%`;
    track.append(seg);
  }
  return h(
    "div",
    { class: "pct" },
    h("span", {}, label),
    track,
    h(
      "span",
      { class: "small" },
      s.p50 === null ? "—" : `${Math.round(s.p50)} / ${Math.round(s.p95)}`,
    ),
  );
}

function providerErrorsPanel(errors) {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Provider errors (since start)"),
    errors.length
      ? h(
        "table",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Provider"),
          h("th", {}, "Kind"),
          h("th", {}, "Count"),
        ),
        errors.map((e) =>
          h(
            "tr",
            {},
            h("td", {}, e.provider),
            h("td", {}, e.kind),
            h("td", {}, e.count),
          )
        ),
      )
      : h("p", { class: "empty" }, "None."),
  );
}

// Live calls, updated by the event stream.
function livePage() {
  const draw = () => {
    const calls = [...live.values()];
    main.replaceChildren(
      h("h1", {}, `Live calls (${calls.length})`),
      calls.length === 0
        ? h(
          "div",
          { class: "panel" },
          h(
            "p",
            { class: "empty" },
            "No calls right now. They appear here as they connect.",
          ),
        )
        : h("div", { class: "grid" }, calls.map(liveCard)),
    );
  };
  draw();
  cleanupPage = onLive(draw);
  ticker = setInterval(() => {
    for (const el of main.querySelectorAll("[data-started]")) {
      el.textContent = duration(Date.now() - Date.parse(el.dataset.started));
    }
  }, 1000);
}

export function liveCard(call) {
  return h(
    "section",
    { class: "panel", "data-testid": "live-call", "data-call-id": call.callId },
    h(
      "div",
      { class: "call-head" },
      h("strong", {}, call.from || "unknown caller"),
      h("span", { class: "muted" }, "→ ", call.to || "—"),
      badge(call.activity),
      h(
        "span",
        { class: "muted small", "data-started": call.startedAt },
        duration(Date.now() - Date.parse(call.startedAt)),
      ),
    ),
    h(
      "div",
      { class: "small muted" },
      `${call.bot} · ${
        call.sampleRate / 1000
      } kHz · barge-ins ${call.bargeIns}`,
      call.dtmfDigits ? ` · keys ${call.dtmfDigits}` : "",
    ),
    transcriptView(call.transcript, call.partial),
    h("h2", { class: "small" }, "Turn latency"),
    latencyBars(call.turns),
  );
}

// History: records, searchable by number, date and outcome.
function history() {
  const filters = historyFilters(
    new URLSearchParams(location.hash.split("?")[1] ?? ""),
  );
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  let cursor = null;
  const rows = [];
  const load = async (more) => {
    const query = callsQuery(filters);
    if (more && cursor) query.set("cursor", cursor);
    try {
      const page = await api(`/console/api/calls?${query}`);
      if (!more) rows.length = 0;
      rows.push(...page.calls);
      cursor = page.cursor;
      body.replaceChildren(
        historyTable(rows),
        cursor
          ? h("button", { type: "button", onclick: () => load(true) }, "More")
          : "",
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        return showLogin("Your session expired: log in again.");
      }
      body.replaceChildren(h("p", { class: "error" }, error.message));
    }
  };
  main.replaceChildren(
    h("h1", {}, "History"),
    h("div", { class: "panel" }, historyForm(filters, () => load(false))),
    h("div", { class: "panel" }, body),
  );
  load(false);
}

/** The outcomes the history can filter on; "" is any. */
const OUTCOMES = [
  "",
  "stop",
  "closed",
  "hangup",
  "idle_timeout",
  "max_call_length",
  "server_shutdown",
  "bot_error",
  "other",
];

/** The history's search fields, filled from the page's query. */
function historyFilters(params) {
  const number = h("input", {
    name: "number",
    placeholder: "+91…",
    value: params.get("number") ?? "",
    inputmode: "tel",
  });
  const from = h("input", {
    name: "from",
    type: "date",
    value: params.get("from") ?? "",
  });
  const to = h("input", {
    name: "to",
    type: "date",
    value: params.get("to") ?? "",
  });
  const outcome = h(
    "select",
    { name: "outcome" },
    OUTCOMES.map((o) =>
      h(
        "option",
        { value: o, selected: o === (params.get("outcome") ?? "") },
        o || "any outcome",
      )
    ),
  );
  return { number, from, to, outcome };
}

/** The calls API query for the search fields: dates are local days, `to` inclusive. */
function callsQuery({ number, from, to, outcome }) {
  const query = new URLSearchParams();
  if (number.value) query.set("number", number.value);
  if (from.value) {
    query.set("from", new Date(`${from.value}T00:00:00`).toISOString());
  }
  if (to.value) {
    query.set(
      "to",
      new Date(new Date(`${to.value}T00:00:00`).getTime() + 86_400_000)
        .toISOString(),
    );
  }
  if (outcome.value) query.set("outcome", outcome.value);
  return query;
}

function historyForm({ number, from, to, outcome }, search) {
  return h(
    "form",
    {
      class: "inline",
      onsubmit: (e) => {
        e.preventDefault();
        search();
      },
    },
    h("label", {}, "Number", number),
    h("label", {}, "From", from),
    h("label", {}, "To", to),
    h("label", {}, "Outcome", outcome),
    h("button", { class: "primary", type: "submit" }, "Search"),
  );
}

function historyTable(rows) {
  if (rows.length === 0) return h("p", { class: "empty" }, "No calls match.");
  return h(
    "table",
    {},
    h(
      "tr",
      {},
      h("th", {}, "Ended"),
      h("th", {}, "From"),
      h("th", { class: "hide-narrow" }, "To"),
      h("th", { class: "hide-narrow" }, "Bot"),
      h("th", {}, "Length"),
      h("th", {}, "Outcome"),
      h("th", { class: "hide-narrow" }, "Exotel"),
    ),
    rows.map(historyRow),
  );
}

function historyRow(c) {
  const open = () => location.hash = `#/calls/${encodeURIComponent(c.id)}`;
  return h(
    "tr",
    {
      class: "rowlink",
      "data-testid": "history-row",
      "data-call-id": c.callId,
      tabindex: 0,
      onclick: open,
      onkeydown: (e) => e.key === "Enter" && open(),
    },
    h("td", {}, when(c.endedAt)),
    h("td", {}, mask(c.from)),
    h("td", { class: "hide-narrow" }, mask(c.to)),
    h("td", { class: "hide-narrow" }, c.bot),
    h("td", {}, duration(c.durationMs)),
    h("td", {}, c.ended.outcome),
    h("td", { class: "hide-narrow" }, c.exotel?.status ?? "—"),
  );
}

/** Numbers as the logs show them: all but the last four digits masked. */
function mask(number) {
  return number && /\d{5}/.test(number)
    ? "*".repeat(number.length - 4) + number.slice(-4)
    : number || "—";
}

async function callPage(id, refreshing = false) {
  if (!refreshing) main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const call = await api(`/console/api/calls/${encodeURIComponent(id)}`);
    if (call.state === "in_progress") {
      // A live call's record: show it again, complete, once the call ends.
      const shown = location.hash;
      setTimeout(() => {
        if (location.hash === shown) callPage(id, true);
      }, 1000);
    }
    main.replaceChildren(
      h("p", {}, h("a", { href: "#/calls" }, "← History")),
      h("h1", {}, `Call ${call.callId}`),
      h(
        "div",
        { class: "grid" },
        h(
          "section",
          { class: "panel" },
          h("h2", {}, "Call"),
          callFacts(call),
          recordingView(call),
        ),
        exotelPanel(call.exotel),
      ),
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Transcript"),
        transcriptView(call.transcript),
      ),
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Turn latency"),
        latencyBars(call.turns),
      ),
    );
  } catch (error) {
    fail(error);
  }
}

function callFacts(call) {
  const { counters } = call;
  const facts = [
    ["From", mask(call.from)],
    ["To", mask(call.to)],
    ["Bot", call.bot],
    ["Started", when(call.startedAt)],
    ["Length", duration(call.durationMs)],
    [
      "Outcome",
      call.state === "in_progress"
        ? "in progress"
        : `${call.ended.outcome} (${call.ended.reason})`,
      { "data-testid": "outcome" },
    ],
    ["Rate", `${call.sampleRate} Hz`],
    ["Keys", call.dtmfDigits || "—"],
    [
      "Barge-ins",
      String(call.transcript.filter((e) => e.interrupted).length),
    ],
    [
      "Frames",
      `${counters.framesIn} in · ${counters.framesOut} out · ${counters.clears} clears`,
    ],
  ];
  return h(
    "dl",
    { class: "facts" },
    facts.map(([term, value, attributes = {}]) => [
      h("dt", {}, term),
      h("dd", attributes, value),
    ]),
  );
}

function recordingView(call) {
  if (!call.recording) {
    return h(
      "p",
      { class: "empty small" },
      "Not recorded (set RECORDINGS_DIR to keep audio).",
    );
  }
  return [
    h("h2", {}, "Recording"),
    h("audio", {
      controls: true,
      preload: "metadata",
      src: `/console/api/calls/${encodeURIComponent(call.id)}/recording`,
      "data-testid": "recording",
    }),
    h(
      "div",
      { class: "small muted" },
      `Left: caller · right: bot · ${duration(call.recording.durationMs)}`,
    ),
  ];
}

function exotelPanel(exotel) {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Exotel's status"),
    exotel
      ? h(
        "dl",
        { class: "facts" },
        Object.entries(exotel).map(([k, v]) => [
          h("dt", {}, k),
          h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v)),
        ]),
      )
      : h(
        "p",
        { class: "empty" },
        "Exotel sent no status callback for this call.",
      ),
  );
}

function softphone() {
  cleanupPage = renderSoftphone(main, { session, live, onLive });
}

start().catch(fail);
