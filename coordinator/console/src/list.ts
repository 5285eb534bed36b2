// The containers page: a list kept live from the status stream (no reloads), and the create
// form, whose 422 details are shown beside the fields they are about.

import { all, api, ApiError, containerPath, type Container } from "./api";
import { age, banner, fill, h } from "./dom";
import type { Live } from "./live";

const COLUMNS = ["Name", "Status", "Health", "Type", "Address", "Age"];

function row(c: Container): HTMLTableRowElement {
  return h(
    "tr",
    { "data-id": c.id, "data-status": c.status },
    h("td", {}, h("a", { href: `#/containers/${c.id}` }, c.name)),
    h(
      "td",
      {},
      h("span", { class: `status s-${c.status}` }, c.status),
      c.status_reason ? h("small", { class: "reason" }, ` ${c.status_reason}`) : null,
    ),
    h("td", {}, (c.health as string | undefined) ?? ""),
    h("td", {}, c.instance_type),
    h("td", {}, c.external_ip ?? c.internal_ip ?? c.hostname),
    h("td", { title: c.created_at }, age(c.created_at)),
  );
}

export function containersPage(main: HTMLElement, live: Live): () => void {
  const byId = new Map<string, Container>();
  const body = h("tbody", { id: "containers" });
  const empty = h("p", { class: "muted", id: "no-containers" }, "No containers yet.");
  const render = () => {
    const list = [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
    fill(body, ...list.map(row));
    empty.hidden = list.length > 0;
  };
  const refresh = async (id: string) => {
    try {
      byId.set(id, await api<Container>("GET", containerPath(id)));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) byId.delete(id);
      else return;
    }
    render();
  };
  const stop = live.listen((m) => {
    if (m.type === "containers") {
      byId.clear();
      for (const c of m.data as Container[]) byId.set(c.id, c);
      render();
      return;
    }
    const d = (m as { data: { container_id: string; status: string; external_ip?: string } }).data;
    if (m.type === "container_deleted") {
      byId.delete(d.container_id);
      render();
      return;
    }
    const known = byId.get(d.container_id);
    if (known) {
      known.status = d.status;
      if (d.external_ip) known.external_ip = d.external_ip;
      render();
    }
    // Names, reasons and health come with the record, not the event.
    void refresh(d.container_id);
  });

  const table = h(
    "table",
    { class: "list", "aria-label": "Containers" },
    h("thead", {}, h("tr", {}, ...COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  fill(
    main,
    h("h1", {}, "Containers"),
    table,
    empty,
    createForm((c) => {
      byId.set(c.id, c);
      render();
    }),
  );
  render();
  return stop;
}

function field(label: string, name: string, input: HTMLElement, hint?: string): HTMLElement {
  input.id = `f-${name}`;
  input.setAttribute("name", name);
  input.setAttribute("aria-describedby", `err-${name}`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: `f-${name}` }, label),
    input,
    hint ? h("small", { class: "muted" }, hint) : null,
    h("p", { class: "field-error", "data-err": name, id: `err-${name}`, role: "alert" }),
  );
}

function createForm(created: (c: Container) => void): HTMLElement {
  const name = h("input", { required: true, autocomplete: "off", maxlength: 63 });
  const type = h("input", { placeholder: "nano", autocomplete: "off" });
  const image = h("select", {}, h("option", { value: "" }, "default image"));
  const storage = h("input", { type: "number", min: 1, placeholder: "5" });
  const mounts = h("input", { placeholder: "/root", autocomplete: "off" });
  const env = h("textarea", { rows: 2, placeholder: "KEY=value, one a line" });
  const ssh = h("input", { type: "checkbox" });
  const keys = h("fieldset", { class: "keys" }, h("legend", {}, "SSH keys"));
  const form = h(
    "form",
    { class: "create", "aria-label": "Create a container" },
    h("h2", {}, "Create a container"),
    field("Name", "name", name),
    field("Type", "instance_type", type),
    field("Image", "image", image),
    field("Storage (GiB)", "storage_gb", storage),
    field("Mount paths", "mount_paths", mounts, "comma separated"),
    field("Environment", "env", env),
    keys,
    h("p", { class: "field-error", "data-err": "ssh_key_ids", role: "alert" }),
    h("div", { class: "field check" }, ssh, h("label", { for: "f-ssh_enabled" }, "SSH enabled")),
    h("p", { class: "field-error", "data-err": "body", role: "alert" }),
    h("button", { type: "submit" }, "Create"),
  );
  ssh.id = "f-ssh_enabled";
  void (async () => {
    try {
      for (const im of await all<{ name: string; image: string }>("/compute/images", "images")) {
        image.append(h("option", { value: im.image }, im.name));
      }
      const all_keys = await all<{ id: number; name: string }>("/compute/ssh-keys", "ssh_keys");
      if (all_keys.length === 0) keys.append(h("p", { class: "muted" }, "No keys yet: add one under Keys."));
      for (const k of all_keys) {
        const id = `key-${k.id}`;
        keys.append(
          h("span", { class: "check" }, h("input", { type: "checkbox", id, value: k.id, checked: true }), h("label", { for: id }, k.name)),
        );
      }
    } catch (e) {
      banner(`Cannot read images or keys: ${(e as Error).message}`);
    }
  })();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    const body: Record<string, unknown> = {
      name: name.value.trim(),
      ssh_key_ids: [...keys.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => Number(i.value)),
      ssh_enabled: ssh.checked,
    };
    if (type.value.trim()) body.instance_type = type.value.trim();
    if (image.value) body.image = image.value;
    if (storage.value) body.storage_gb = Number(storage.value);
    if (mounts.value.trim()) body.mount_paths = mounts.value.split(",").map((m) => m.trim()).filter(Boolean);
    if (env.value.trim()) {
      body.env = Object.fromEntries(
        env.value
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean)
          .map((l) => [l.split("=")[0], l.slice(l.indexOf("=") + 1)]),
      );
    }
    try {
      const c = await api<Container>("POST", "/compute/containers", body);
      created(c);
      banner(`Created ${c.name}`, true);
      form.reset();
    } catch (e) {
      showErrors(form, e);
    }
  });
  return form;
}

/** A 422's details beside their fields (`env.KEY` goes to `env`); anything else on top. */
export function showErrors(form: HTMLElement, e: unknown): void {
  if (!(e instanceof ApiError)) {
    banner(String(e));
    return;
  }
  const fields = Object.entries(e.details);
  if (fields.length === 0) {
    const at = form.querySelector('[data-err="body"]');
    if (at) at.textContent = e.message;
    banner(e.message);
    return;
  }
  for (const [f, msgs] of fields) {
    const slot = (name: string) => form.querySelector(`[data-err="${CSS.escape(name)}"]`);
    const at = slot(f.split(/[.[]/)[0]) ?? slot("body");
    if (at) at.textContent = `${at.textContent ? at.textContent + "; " : ""}${f}: ${msgs.join(", ")}`;
  }
}
