// "Call the bot": the microphone becomes 16-bit PCM over the same voicebot
// WebSocket protocol Exotel speaks (connected, start, media, dtmf, mark,
// stop), and the bot's media, marks and clears are played as Exotel would.
import { api, badge, h, latencyBars, transcriptView } from "./ui.js";

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

/** Renders the softphone into `main`; returns the page's cleanup (hangs up). */
export function renderSoftphone(main, { session, live, onLive }) {
  let call;
  const controls = softphoneControls(session, (key) => call?.dtmf(key));
  const { bot, rate, status, dial, hang } = controls;
  const side = h(
    "div",
    {},
    h(
      "p",
      { class: "empty" },
      "The live transcript appears here during the call.",
    ),
  );

  const drawSide = () => {
    const view = call &&
      [...live.values()].find((c) => c.callId === call.callId);
    if (view) side.replaceChildren(...liveCallView(view));
  };
  const unsubscribe = onLive(drawSide);

  const setIdle = (text) => {
    status.textContent = text;
    dial.disabled = false;
    hang.disabled = true;
    bot.disabled = rate.disabled = false;
    call = undefined;
  };

  dial.addEventListener("click", async () => {
    dial.disabled = true;
    bot.disabled = rate.disabled = true;
    status.textContent = "Connecting…";
    try {
      call = await startCall({
        bot: bot.value,
        sampleRate: Number(rate.value),
        onEnd: setIdle,
        onStatus: (t) => status.textContent = t,
      });
      hang.disabled = false;
      side.replaceChildren(
        h("p", { class: "muted" }, "Connected: say something."),
      );
    } catch (error) {
      setIdle(`Could not call: ${error.message}`);
    }
  });
  hang.addEventListener("click", () => call?.hangup());

  main.replaceChildren(
    h("h1", {}, "Call the bot"),
    softphoneLayout(controls, side),
  );
  return () => {
    unsubscribe();
    call?.hangup();
  };
}

/** The softphone's bot and rate pickers, status line, buttons and keypad. */
function softphoneControls(session, pressKey) {
  const bot = h(
    "select",
    { name: "bot", "aria-label": "Bot" },
    session.bots.map((name) => h("option", { value: name }, name)),
  );
  const rate = h(
    "select",
    { name: "rate", "aria-label": "Sample rate" },
    session.rates.map((r) => h("option", { value: r }, `${r / 1000} kHz`)),
  );
  const status = h("div", {
    class: "status",
    "data-testid": "softphone-status",
    role: "status",
  }, "Idle");
  const dial = h("button", { class: "primary", type: "button" }, "Call");
  const hang = h(
    "button",
    { class: "danger", type: "button", disabled: true },
    "Hang up",
  );
  const keypad = h(
    "div",
    { class: "keypad" },
    KEYS.map((key) =>
      h("button", {
        type: "button",
        "aria-label": `Key ${key}`,
        onclick: () => pressKey(key),
      }, key)
    ),
  );
  return { bot, rate, status, dial, hang, keypad };
}

function softphoneLayout({ bot, rate, status, dial, hang, keypad }, side) {
  return h(
    "div",
    { class: "softphone" },
    h(
      "section",
      { class: "panel" },
      h(
        "p",
        { class: "small muted" },
        "Your microphone goes to the bot over the voicebot WebSocket, exactly as Exotel streams a caller.",
      ),
      h(
        "div",
        { class: "inline" },
        h("label", {}, "Bot", bot),
        " ",
        h("label", {}, "Rate", rate),
      ),
      status,
      h("div", { class: "inline" }, dial, " ", hang),
      keypad,
    ),
    h("section", { class: "panel" }, h("h2", {}, "Live transcript"), side),
  );
}

/** The softphone call as the console's live view sees it. */
function liveCallView(view) {
  return [
    h(
      "div",
      { class: "call-head" },
      h("strong", {}, view.bot),
      badge(view.activity),
      h("span", { class: "muted small" }, `barge-ins ${view.bargeIns}`),
    ),
    transcriptView(view.transcript, view.partial),
    h("h2", { class: "small" }, "Turn latency"),
    latencyBars(view.turns),
  ];
}

async function startCall({ bot, sampleRate, onEnd, onStatus }) {
  const grant = await api("/console/api/softphone", {
    method: "POST",
    body: { bot, sampleRate },
  });
  const { mic, context, capture, player } = await openAudio(sampleRate);
  const socket = await connectSocket(grant.path);
  const streamSid = `console-${crypto.randomUUID()}`;
  let sequence = 0;
  let ended = false;
  const send = (event) =>
    socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({
      ...event,
      sequence_number: String(++sequence),
      stream_sid: streamSid,
    }));

  const finish = (text) => {
    if (ended) return;
    ended = true;
    capture.port.onmessage = null;
    for (const track of mic.getTracks()) track.stop();
    context.close();
    onEnd(text);
  };

  socket.send(
    JSON.stringify({ event: "connected", protocol: "Call", version: "1.0.0" }),
  );
  send(startEvent(grant, streamSid, sampleRate));
  onStatus(`In call with ${bot} at ${sampleRate / 1000} kHz`);
  streamMicrophone(capture, send);
  playBotAudio({ socket, player, send });
  socket.onclose = (event) =>
    finish(
      `Call ended${
        event.reason ? `: ${event.reason}` : ""
      } (code ${event.code})`,
    );

  return {
    callId: grant.callId,
    dtmf(digit) {
      send({ event: "dtmf", dtmf: { digit, duration: "100" } });
    },
    hangup() {
      send({
        event: "stop",
        stop: {
          call_sid: grant.callId,
          account_sid: "console",
          reason: "callended",
        },
      });
      socket.close(1000, "caller hung up");
      finish("Call ended: you hung up");
    },
  };
}

/**
 * The microphone captured in 20 ms PCM frames (`capture`), and a player
 * for the bot's audio (`player`), both at the call's rate.
 */
async function openAudio(sampleRate) {
  const mic = await navigator.mediaDevices.getUserMedia({
    audio: {
      channelCount: 1,
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
    },
  });
  const context = new AudioContext({ sampleRate, latencyHint: "interactive" });
  await context.audioWorklet.addModule("/console/static/worklets.js");
  const source = context.createMediaStreamSource(mic);
  const capture = new AudioWorkletNode(context, "pcm-capture", {
    processorOptions: { frameSamples: sampleRate / 50 }, // 20 ms frames
  });
  const sink = context.createGain();
  sink.gain.value = 0; // keeps the capture pulled without hearing ourselves
  source.connect(capture).connect(sink).connect(context.destination);
  const player = new AudioWorkletNode(context, "pcm-player", {
    numberOfInputs: 0,
    outputChannelCount: [1],
  });
  player.connect(context.destination);
  await context.resume();
  return { mic, context, capture, player };
}

/** The voicebot WebSocket at `path` on this host, once open. */
async function connectSocket(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${path}`);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () =>
      reject(new Error("the voicebot socket refused the call"));
  });
  return socket;
}

/** The `start` event Exotel sends, for the softphone's call. */
function startEvent(grant, streamSid, sampleRate) {
  return {
    event: "start",
    start: {
      stream_sid: streamSid,
      call_sid: grant.callId,
      account_sid: "console",
      from: "browser",
      to: "console",
      custom_parameters: { source: "softphone" },
      media_format: {
        encoding: "audio/x-raw",
        sample_rate: String(sampleRate),
        bit_rate: "16",
      },
    },
  };
}

/** Sends each captured frame as a `media` event, numbered and timed like Exotel's. */
function streamMicrophone(capture, send) {
  const started = performance.now();
  let chunk = 0;
  capture.port.onmessage = ({ data }) => {
    chunk++;
    send({
      event: "media",
      media: {
        chunk: String(chunk),
        timestamp: String(Math.round(performance.now() - started)),
        payload: new Uint8Array(data).toBase64(),
      },
    });
  };
}

/**
 * Plays the bot's media, marks and clears as Exotel would, and echoes each
 * mark once the audio before it has played.
 */
function playBotAudio({ socket, player, send }) {
  player.port.onmessage = ({ data }) => {
    if (data.type === "played") {
      send({ event: "mark", mark: { name: data.name } });
    }
  };
  socket.onmessage = ({ data }) => {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.event === "media" && frame.media?.payload) {
      const pcm = Uint8Array.fromBase64(frame.media.payload);
      player.port.postMessage({ type: "pcm", pcm: pcm.buffer }, [pcm.buffer]);
    } else if (frame.event === "mark" && frame.mark?.name) {
      player.port.postMessage({ type: "mark", name: frame.mark.name });
    } else if (frame.event === "clear") {
      player.port.postMessage({ type: "clear" });
    }
  };
}
