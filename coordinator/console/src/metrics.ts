// Metrics as small charts over the last five minutes: the metrics call polled every 2 s,
// CPU %, memory and disk I/O (a rate, from the cumulative byte counters), drawn on canvases.

import { api, containerPath } from "./api";
import { bytes, h } from "./dom";

interface Sample {
  cpu_usage_percent: number;
  memory_usage_bytes: number;
  memory_total_bytes: number;
  disk_read_bytes: number;
  disk_write_bytes: number;
}

const EVERY_MS = 2000;
const POINTS = 150;

class Chart {
  readonly el: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly now: HTMLElement;
  readonly values: number[] = [];

  constructor(
    private readonly title: string,
    private readonly show: (v: number) => string,
  ) {
    this.canvas = h("canvas", { width: 300, height: 60, role: "img", "aria-label": title });
    this.now = h("span", { class: "now" });
    this.el = h("figure", { class: "chart" }, h("figcaption", {}, title, " ", this.now), this.canvas);
  }

  push(v: number): void {
    this.values.push(v);
    if (this.values.length > POINTS) this.values.shift();
    this.now.textContent = this.show(v);
    this.canvas.setAttribute("aria-label", `${this.title}: ${this.show(v)}`);
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    const { width: w, height: hgt } = this.canvas;
    const max = Math.max(...this.values, 1e-9);
    ctx.clearRect(0, 0, w, hgt);
    ctx.strokeStyle = "#2b6cb0";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    this.values.forEach((y, i) => {
      const x = (i / (POINTS - 1)) * w;
      const py = hgt - 2 - (y / max) * (hgt - 4);
      if (i === 0) ctx.moveTo(x, py);
      else ctx.lineTo(x, py);
    });
    ctx.stroke();
  }
}

export class MetricsPane {
  readonly el: HTMLElement;
  private timer: number | undefined;
  private running = false;
  private last: { at: number; io: number } | null = null;
  private readonly cpu = new Chart("CPU", (v) => `${v.toFixed(1)} %`);
  private readonly mem = new Chart("Memory", (v) => bytes(v));
  private readonly io = new Chart("Disk I/O", (v) => `${bytes(v)}/s`);
  private readonly state: HTMLElement;

  constructor(private readonly id: string) {
    this.state = h("p", { class: "muted", role: "status" });
    this.el = h(
      "section",
      { "aria-label": "Metrics" },
      h("h2", {}, "Metrics"),
      h("div", { class: "charts", id: "metrics" }, this.cpu.el, this.mem.el, this.io.el),
      this.state,
    );
  }

  start(): void {
    this.running = true;
    const tick = async () => {
      try {
        const m = await api<Sample>("GET", `${containerPath(this.id)}/metrics`);
        const at = performance.now();
        const io = m.disk_read_bytes + m.disk_write_bytes;
        this.cpu.push(m.cpu_usage_percent);
        this.mem.push(m.memory_usage_bytes);
        this.io.push(this.last ? Math.max(0, (io - this.last.io) / ((at - this.last.at) / 1000)) : 0);
        this.last = { at, io };
        this.state.textContent = "";
      } catch (e) {
        this.state.textContent = `No metrics now: ${(e as Error).message}`;
        this.last = null;
      }
      if (this.running) this.timer = window.setTimeout(tick, EVERY_MS);
    };
    void tick();
  }

  stop(): void {
    this.running = false;
    window.clearTimeout(this.timer);
  }
}
