// The live status stream (`/compute/ws`): the caller's whole list on connect, then one
// message per change. Reconnects with a jittered backoff and says so in the header; every
// reconnect starts again from the whole list, so nothing missed while away stays missed.

import type { Container } from "./api";
import { wsUrl } from "./api";

export type LiveMessage =
  | { type: "containers"; data: Container[] }
  | { type: string; data: { container_id: string; status: string; external_ip?: string } };

type Listener = (m: LiveMessage) => void;

export class Live {
  private ws: WebSocket | null = null;
  private listeners = new Set<Listener>();
  private attempt = 0;
  private stopped = false;
  private timer: number | undefined;

  /** `signedOut` is called when the session is gone (the token expired): no more retries. */
  constructor(
    private readonly state: HTMLElement,
    private readonly signedOut: () => void,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Closes the stream for good (sign out). */
  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
    this.say("");
  }

  /** Calls `f` with every message until the returned function is called. */
  listen(f: Listener): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private say(text: string, ok = false): void {
    this.state.textContent = text;
    this.state.className = ok ? "link-state ok" : "link-state";
  }

  private connect(): void {
    const ws = new WebSocket(wsUrl("/compute/ws"));
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.say("live", true);
    };
    ws.onmessage = (ev) => {
      let m: LiveMessage;
      try {
        m = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      for (const f of this.listeners) f(m);
    };
    ws.onclose = async () => {
      if (this.ws !== ws || this.stopped) return;
      // A WebSocket does not say why it was refused: ask whether the session still holds.
      const session = await fetch("/compute/session", { credentials: "same-origin" }).catch(() => null);
      if (session?.status === 401) {
        this.stop();
        this.signedOut();
        return;
      }
      this.attempt++;
      const delay = Math.min(15000, 500 * 2 ** Math.min(this.attempt, 5)) * (0.5 + Math.random() / 2);
      this.say(`disconnected; reconnecting in ${Math.ceil(delay / 1000)}s`);
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }
}
