// Logs following live: the logs WebSocket with `?tail=`, one message per line
// (`<RFC3339Nano> <text>`). Kept to the last 1,000 lines on the page.

import { containerPath, wsUrl } from "./api";
import { h } from "./dom";

const KEEP = 1000;

export class LogsPane {
  readonly el: HTMLElement;
  private ws: WebSocket | null = null;
  private readonly out: HTMLElement;
  private readonly state: HTMLElement;
  private readonly tail: HTMLSelectElement;
  private readonly button: HTMLButtonElement;

  constructor(private readonly id: string) {
    this.out = h("pre", { class: "logs", id: "logs", tabindex: 0, "aria-label": "Log lines", "aria-live": "off" });
    this.state = h("span", { class: "muted", role: "status" });
    this.tail = h(
      "select",
      { id: "logs-tail", "aria-label": "Lines to start with" },
      ...[20, 100, 500].map((n) => h("option", { value: n, selected: n === 100 }, `last ${n}`)),
    );
    this.tail.addEventListener("change", () => this.ws && this.follow());
    this.button = h("button", { type: "button", onclick: () => (this.ws ? this.stop() : this.follow()) }, "Follow logs");
    this.el = h(
      "section",
      { "aria-label": "Logs" },
      h("h2", {}, "Logs"),
      h("p", {}, this.tail, " ", this.button, " ", this.state),
      this.out,
    );
  }

  follow(): void {
    this.stop();
    this.out.replaceChildren();
    const ws = new WebSocket(wsUrl(`${containerPath(this.id)}/logs?tail=${this.tail.value}`));
    this.ws = ws;
    this.state.textContent = "connecting…";
    ws.onopen = () => {
      this.state.textContent = "following";
      this.button.textContent = "Stop following";
    };
    ws.onmessage = (ev) => {
      const line = String(ev.data);
      const sp = line.indexOf(" ");
      const at = h("time", { datetime: line.slice(0, sp) }, new Date(line.slice(0, sp)).toLocaleTimeString());
      this.out.append(h("div", { class: "line" }, at, " ", line.slice(sp + 1)));
      while (this.out.childElementCount > KEEP) this.out.firstElementChild?.remove();
      this.out.scrollTop = this.out.scrollHeight;
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.button.textContent = "Follow logs";
      this.state.textContent = ev.code === 1000 ? "ended (the container stopped)" : "not following: is the container running?";
    };
  }

  stop(): void {
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.button.textContent = "Follow logs";
    this.state.textContent = "";
  }
}
