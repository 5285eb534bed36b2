// Building the page: a small element helper (text is always set as text, never as HTML),
// the banner for errors and a confirmation dialog.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

/** `h("button", { onclick: f, "aria-label": "Stop" }, "Stop")`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "number" ? String(c) : c);
  }
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

let bannerTimer: number | undefined;

/** Says something went wrong (or right, `ok`), at the top of the page. */
export function banner(message: string, ok = false): void {
  const b = document.getElementById("banner")!;
  b.textContent = message;
  b.className = ok ? "banner ok" : "banner";
  b.hidden = false;
  window.clearTimeout(bannerTimer);
  bannerTimer = window.setTimeout(() => (b.hidden = true), ok ? 4000 : 12000);
}

/** A yes/no question in a modal `<dialog>`; resolves `true` on yes. */
export function confirmDialog(question: string, yes: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dlg = h(
      "dialog",
      { class: "confirm", "aria-label": question },
      h("p", {}, question),
      h(
        "form",
        { method: "dialog" },
        h("button", { value: "no", type: "submit" }, "Cancel"),
        h("button", { value: "yes", type: "submit", class: "danger" }, yes),
      ),
    );
    dlg.addEventListener("close", () => {
      resolve(dlg.returnValue === "yes");
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** "3m", "2h", "5d" since an RFC 3339 time. */
export function age(rfc3339: string | undefined): string {
  if (!rfc3339) return "";
  const s = Math.max(0, (Date.now() - Date.parse(rfc3339)) / 1000);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
