// The pages about the account and the fleet: SSH keys (list, add, delete) and, for
// operators, hosts with their connection state, capacity and cordon/uncordon.

import { all, api } from "./api";
import { age, banner, confirmDialog, fill, h } from "./dom";
import { showErrors } from "./list";

interface Key {
  id: number;
  name: string;
  fingerprint: string;
  created_at: string;
}

export function keysPage(main: HTMLElement): void {
  const list = h("tbody", { id: "keys" });
  const load = async () => {
    try {
      const keys = await all<Key>("/compute/ssh-keys", "ssh_keys");
      fill(
        list,
        ...keys.map((k) =>
          h(
            "tr",
            {},
            h("td", {}, k.name),
            h("td", {}, h("code", {}, k.fingerprint)),
            h("td", { title: k.created_at }, age(k.created_at)),
            h(
              "td",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "danger",
                  "aria-label": `Delete key ${k.name}`,
                  onclick: async () => {
                    if (!(await confirmDialog(`Delete key ${k.name}? It is revoked from every container.`, "Delete"))) return;
                    try {
                      await api("DELETE", `/compute/ssh-keys/${k.id}`);
                      await load();
                    } catch (e) {
                      banner((e as Error).message);
                    }
                  },
                },
                "Delete",
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      banner(`Cannot read keys: ${(e as Error).message}`);
    }
  };
  const name = h("input", { id: "f-key-name", name: "name", required: true, autocomplete: "off" });
  const key = h("textarea", { id: "f-public_key", name: "public_key", rows: 3, required: true, placeholder: "ssh-ed25519 AAAA…" });
  const slot = (n: string) => h("p", { class: "field-error", "data-err": n, role: "alert" });
  const form = h(
    "form",
    { class: "create", "aria-label": "Add an SSH key" },
    h("h2", {}, "Add a key"),
    h("div", { class: "field" }, h("label", { for: "f-key-name" }, "Name"), name, slot("name")),
    h("div", { class: "field" }, h("label", { for: "f-public_key" }, "Public key"), key, slot("public_key")),
    slot("body"),
    h("button", { type: "submit" }, "Add"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    try {
      await api("POST", "/compute/ssh-keys", { name: name.value, public_key: key.value.trim() });
      form.reset();
      await load();
    } catch (e) {
      showErrors(form, e);
    }
  });
  fill(
    main,
    h("h1", {}, "SSH keys"),
    h(
      "table",
      { class: "list", "aria-label": "SSH keys" },
      h("thead", {}, h("tr", {}, ...["Name", "Fingerprint", "Age", ""].map((c) => h("th", { scope: "col" }, c)))),
      list,
    ),
    form,
  );
  void load();
}

interface Res {
  cpu_millis: number;
  memory_mb: number;
  disk_gb: number;
}

interface Host {
  host_key: string;
  region: string | null;
  status: string;
  cordoned: boolean;
  containers: number;
  capacity: Res | null;
  placeable: Res | null;
  used: Res;
  last_heartbeat?: string;
}

const res = (r: Res | null) => (r ? `${r.cpu_millis / 1000} CPU, ${r.memory_mb} MiB, ${r.disk_gb} GiB` : "—");

export function hostsPage(main: HTMLElement): () => void {
  const list = h("tbody", { id: "hosts" });
  const load = async () => {
    try {
      const hosts = await all<Host>("/compute/hosts", "hosts");
      fill(
        list,
        ...hosts.map((x) =>
          h(
            "tr",
            { "data-host": x.host_key },
            h("td", {}, x.host_key),
            h("td", {}, x.region ?? ""),
            h("td", {}, h("span", { class: `status s-${x.status}` }, x.status), x.cordoned ? " (cordoned)" : ""),
            h("td", {}, x.containers),
            h("td", {}, res(x.used)),
            h("td", {}, res(x.placeable)),
            h("td", {}, res(x.capacity)),
            h(
              "td",
              {},
              h(
                "button",
                {
                  type: "button",
                  onclick: async () => {
                    try {
                      await api("POST", `/compute/hosts/${encodeURIComponent(x.host_key)}/${x.cordoned ? "uncordon" : "cordon"}`);
                      await load();
                    } catch (e) {
                      banner((e as Error).message);
                    }
                  },
                },
                x.cordoned ? "Uncordon" : "Cordon",
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      banner(`Cannot read hosts: ${(e as Error).message}`);
    }
  };
  fill(
    main,
    h("h1", {}, "Hosts"),
    h(
      "table",
      { class: "list", "aria-label": "Hosts" },
      h(
        "thead",
        {},
        h("tr", {}, ...["Host", "Region", "State", "Containers", "Used", "Placeable", "Capacity", ""].map((c) => h("th", { scope: "col" }, c))),
      ),
      list,
    ),
  );
  void load();
  const timer = window.setInterval(load, 5000);
  return () => window.clearInterval(timer);
}
