// Audio worklets for the softphone. The AudioContext runs at the call's rate
// (8 or 16 kHz), so the browser resamples the microphone and the speakers.

/** Microphone → 16-bit PCM frames of `frameSamples`, posted to the page. */
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frameSamples = options.processorOptions.frameSamples;
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
  }
  process(inputs) {
    const input = inputs[0]?.[0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      const s = Math.max(-1, Math.min(1, input[i]));
      this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === this.frame.length) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        // The old buffer went to the page: its length reads 0 now.
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
      }
    }
    return true;
  }
}

/**
 * The bot's audio → speakers, in order. Marks sit between the audio they
 * follow and are posted back once playback passes them, as Exotel does;
 * `clear` drops what has not played and the marks with it.
 */
class PcmPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // { samples: Float32Array, at } | { mark }
    this.port.onmessage = ({ data }) => {
      if (data.type === "pcm") {
        const pcm = new Int16Array(data.pcm);
        const samples = new Float32Array(pcm.length);
        for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
        this.queue.push({ samples, at: 0 });
      } else if (data.type === "mark") {
        this.queue.push({ mark: data.name });
      } else if (data.type === "clear") {
        const dropped = this.queue.filter((item) => item.mark).map((item) =>
          item.mark
        );
        this.queue = [];
        this.port.postMessage({ type: "cleared", marks: dropped });
      }
    };
  }
  process(_inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length > 0) {
      const head = this.queue[0];
      if (head.mark !== undefined) {
        this.port.postMessage({ type: "played", name: head.mark });
        this.queue.shift();
        continue;
      }
      const n = Math.min(out.length - i, head.samples.length - head.at);
      out.set(head.samples.subarray(head.at, head.at + n), i);
      head.at += n;
      i += n;
      if (head.at === head.samples.length) this.queue.shift();
    }
    // Marks right after the last audio are played too.
    while (this.queue[0]?.mark !== undefined) {
      this.port.postMessage({ type: "played", name: this.queue.shift().mark });
    }
    out.fill(0, i);
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
registerProcessor("pcm-player", PcmPlayer);
