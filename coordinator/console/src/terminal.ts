// A shell in the browser: xterm.js on the terminal WebSocket. Binary frames carry bytes both
// ways; a `{"type":"resize"}` text frame follows the window's size.

import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import { containerPath, wsUrl } from "./api";
import { h } from "./dom";

export class TerminalPane {
  readonly el: HTMLElement;
  private term: Terminal | null = null;
  private fitter: FitAddon | null = null;
  private ws: WebSocket | null = null;
  private onResize = () => this.fit();
  private readonly screen: HTMLElement;
  private readonly state: HTMLElement;
  private readonly button: HTMLButtonElement;

  constructor(private readonly id: string) {
    this.screen = h("div", { class: "terminal", id: "terminal", "aria-label": "Terminal" });
    this.state = h("span", { class: "muted", role: "status" });
    this.button = h("button", { type: "button", onclick: () => this.toggle() }, "Open terminal");
    this.el = h("section", { "aria-label": "Terminal" }, h("h2", {}, "Terminal"), h("p", {}, this.button, " ", this.state), this.screen);
  }

  private toggle(): void {
    if (this.ws) this.close();
    else this.open();
  }

  open(): void {
    const term = new Terminal({ cursorBlink: true, fontSize: 14, convertEol: false, scrollback: 2000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    this.screen.replaceChildren();
    term.open(this.screen);
    fit.fit();
    this.term = term;
    this.fitter = fit;
    const ws = new WebSocket(wsUrl(`${containerPath(this.id)}/terminal?cols=${term.cols}&rows=${term.rows}`));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.state.textContent = "connecting…";
    ws.onopen = () => {
      this.state.textContent = "connected";
      this.button.textContent = "Close terminal";
      term.focus();
    };
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) term.write(new Uint8Array(ev.data));
      else term.write(String(ev.data));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.state.textContent = ev.code === 1000 ? "the shell exited" : `closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})`;
      this.button.textContent = "Open terminal";
      this.ws = null;
    };
    const enc = new TextEncoder();
    term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
    term.onResize(({ cols, rows }) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", cols, rows }));
    });
    window.addEventListener("resize", this.onResize);
  }

  private fit(): void {
    this.fitter?.fit();
  }

  close(): void {
    window.removeEventListener("resize", this.onResize);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.term?.dispose();
    this.term = null;
    this.fitter = null;
    this.button.textContent = "Open terminal";
    this.state.textContent = "";
  }
}
