// One container's page: its fields, kept live from the status stream; start, stop, reboot
// and delete (with confirmation); rename and resize; the terminal, logs, metrics, events and
// settings panes.

import { ApiError, api, containerPath, type Container } from "./api";
import { age, banner, confirmDialog, fill, h } from "./dom";
import { showErrors } from "./list";
import type { Live } from "./live";
import { LogsPane } from "./logs";
import { MetricsPane } from "./metrics";
import { ingressSection, mountsSection, sshSection } from "./settings";
import { TerminalPane } from "./terminal";

const SHOWN = [
  "id", "status", "status_reason", "health", "instance_type", "cpu_millis", "memory_mb",
  "memory_used_mb", "storage_gb", "storage_used_gb", "image", "hostname", "external_ip",
  "internal_ip", "host_key", "region", "created_at", "restart_policy", "restart_count",
  "mount_paths", "volumes", "ports", "env",
];

function fields(c: Container): HTMLElement {
  const dl = h("dl", { class: "fields", id: "fields" });
  for (const k of SHOWN) {
    const v = c[k];
    if (v === undefined || v === null) continue;
    const text = typeof v === "object" ? JSON.stringify(v) : String(v);
    dl.append(h("dt", {}, k), h("dd", { "data-field": k }, text));
  }
  return dl;
}

export function containerPage(main: HTMLElement, live: Live, id: string): () => void {
  const term = new TerminalPane(id);
  const logs = new LogsPane(id);
  const metrics = new MetricsPane(id);
  const head = h("div", { id: "container-head" });
  const info = h("div", {});
  const settings = h("div", {});
  const events = h("ol", { class: "events", id: "events", reversed: true });
  let current: Container | null = null;

  /** Fields and actions; with `full`, the forms too (not on every status change: a form
   *  being filled in is not wiped). */
  const load = async (full = false) => {
    try {
      current = await api<Container>("GET", containerPath(id));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        fill(main, h("h1", {}, "Not found"), h("p", {}, "No such container of yours. ", h("a", { href: "#/" }, "Back to the list")));
        return;
      }
      banner((e as Error).message);
      return;
    }
    renderHead(current);
    fill(info, fields(current));
    if (full) {
      const again = () => load(true);
      fill(settings, resizeForm(current, again), sshSection(current, again), ingressSection(current), mountsSection(current, again));
    }
    void loadEvents();
  };
  const loadEvents = async () => {
    try {
      const r = await api<{ events: { at: string; type: string; message: string }[] }>("GET", `${containerPath(id)}/events`);
      fill(events, ...r.events.map((e) => h("li", {}, h("time", { datetime: e.at, title: e.at }, `${age(e.at)} ago`), ` ${e.type}: ${e.message}`)));
    } catch (e) {
      banner(`Cannot read events: ${(e as Error).message}`);
    }
  };

  const act = (label: string, f: () => Promise<unknown>) => async () => {
    try {
      await f();
      banner(`${label}: done`, true);
    } catch (e) {
      banner(`${label}: ${(e as Error).message}`);
    }
  };
  const renderHead = (c: Container) => {
    const running = c.status === "running";
    fill(
      head,
      h("h1", {}, c.name, " ", h("span", { class: `status s-${c.status}`, id: "status" }, c.status)),
      h(
        "div",
        { class: "actions", role: "group", "aria-label": "Actions" },
        h("button", { type: "button", disabled: running, onclick: act("Start", () => api("POST", `${containerPath(id)}/start`)) }, "Start"),
        h("button", { type: "button", disabled: !running, onclick: act("Stop", () => api("POST", `${containerPath(id)}/stop`)) }, "Stop"),
        h("button", { type: "button", disabled: !running, onclick: act("Reboot", () => api("POST", `${containerPath(id)}/actions`, { type: "reboot" })) }, "Reboot"),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: async () => {
              if (!(await confirmDialog(`Delete ${c.name}? Its own storage goes with it.`, "Delete"))) return;
              try {
                await api("DELETE", containerPath(id));
                banner(`Deleted ${c.name}`, true);
                location.hash = "#/";
              } catch (e) {
                banner((e as Error).message);
              }
            },
          },
          "Delete",
        ),
      ),
    );
  };

  const stop = live.listen((m) => {
    if (m.type === "containers") return;
    const d = (m as { data: { container_id: string } }).data;
    if (d.container_id !== id) return;
    if (m.type === "container_deleted") {
      banner("This container was deleted", true);
      location.hash = "#/";
      return;
    }
    void load();
  });

  fill(
    main,
    h("p", {}, h("a", { href: "#/" }, "← Containers")),
    head,
    info,
    term.el,
    logs.el,
    metrics.el,
    h("section", { "aria-label": "Events" }, h("h2", {}, "Events"), events),
    settings,
  );
  void load(true);
  metrics.start();
  return () => {
    stop();
    term.close();
    logs.stop();
    metrics.stop();
  };
}

function resizeForm(c: Container, changed: () => Promise<void>): HTMLElement {
  const input = (name: string, value: string | number, type = "text") =>
    h("input", { id: `f-${name}`, name, value, type, size: 8 });
  const name = input("name", c.name);
  const mem = input("memory_mb", c.memory_mb, "number");
  const cpu = input("cpu_millis", c.cpu_millis, "number");
  const disk = input("storage_gb", c.storage_gb, "number");
  const slot = (n: string) => h("p", { class: "field-error", "data-err": n, role: "alert" });
  const form = h(
    "form",
    { class: "inline", "aria-label": "Rename and resize" },
    h("h2", { class: "form-title" }, "Rename and resize"),
    h("label", { for: "f-name" }, "Name"), name,
    h("label", { for: "f-memory_mb" }, "Memory MiB"), mem,
    h("label", { for: "f-cpu_millis" }, "CPU millis"), cpu,
    h("label", { for: "f-storage_gb" }, "Storage GiB"), disk,
    h("button", { type: "submit" }, "Save"),
    slot("name"), slot("memory_mb"), slot("cpu_millis"), slot("storage_gb"), slot("body"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    const patch: Record<string, unknown> = {};
    if (name.value !== c.name) patch.name = name.value;
    if (Number(mem.value) !== c.memory_mb) patch.memory_mb = Number(mem.value);
    if (Number(cpu.value) !== c.cpu_millis) patch.cpu_millis = Number(cpu.value);
    if (Number(disk.value) !== c.storage_gb) patch.storage_gb = Number(disk.value);
    if (Object.keys(patch).length === 0) return;
    const restarts = c.status === "running" && ("memory_mb" in patch || "cpu_millis" in patch);
    if (restarts && !(await confirmDialog("A resize restarts the running container. Go on?", "Resize"))) return;
    try {
      await api("PATCH", containerPath(c.id), patch);
      banner("Saved", true);
      await changed();
    } catch (e) {
      showErrors(form, e);
    }
  });
  return form;
}
