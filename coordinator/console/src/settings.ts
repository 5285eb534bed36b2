// A container's settings on its page: SSH access (the toggle and its keys), ingress rules
// with add and remove, and mount paths — each the API call of the same name.

import { all, api, containerPath, type Container } from "./api";
import { banner, confirmDialog, fill, h } from "./dom";
import { showErrors } from "./list";

interface Rule {
  id: number;
  port: number;
  target_port: number;
}

export function sshSection(c: Container, changed: () => void): HTMLElement {
  const toggle = h("input", { type: "checkbox", id: "ssh-toggle", checked: c.ssh_enabled });
  toggle.addEventListener("change", async () => {
    try {
      await api("PUT", `${containerPath(c.id)}/ssh`, { ssh_enabled: toggle.checked });
      banner(`SSH ${toggle.checked ? "enabled" : "disabled"}`, true);
      changed();
    } catch (e) {
      toggle.checked = !toggle.checked;
      banner((e as Error).message);
    }
  });
  const keys = h("ul", { class: "plain", id: "container-keys" });
  void all<{ id: number; name: string; fingerprint: string }>("/compute/ssh-keys", "ssh_keys")
    .then((list) => {
      const mine = list.filter((k) => c.ssh_key_ids.includes(k.id));
      fill(keys, ...mine.map((k) => h("li", {}, `${k.name} `, h("code", {}, k.fingerprint))));
      if (mine.length === 0) keys.append(h("li", { class: "muted" }, "no keys"));
    })
    .catch((e) => banner(`Cannot read keys: ${(e as Error).message}`));
  const cmd = c.ssh_command
    ? h(
        "p",
        {},
        h("code", { id: "ssh-command" }, c.ssh_command),
        " ",
        h(
          "button",
          {
            type: "button",
            "aria-label": "Copy the SSH command",
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(c.ssh_command!);
                banner("Copied", true);
              } catch {
                const r = document.createRange();
                r.selectNodeContents(document.getElementById("ssh-command")!);
                getSelection()?.removeAllRanges();
                getSelection()?.addRange(r);
                banner("Selected: copy it with Ctrl+C", true);
              }
            },
          },
          "Copy",
        ),
      )
    : h("p", { class: "muted" }, c.ssh_enabled ? "waiting for the host's SSH address" : "SSH is off");
  return h(
    "section",
    { "aria-label": "SSH" },
    h("h2", {}, "SSH"),
    cmd,
    h("div", { class: "field check" }, toggle, h("label", { for: "ssh-toggle" }, "SSH enabled")),
    h("h3", {}, "Keys"),
    keys,
  );
}

export function ingressSection(c: Container): HTMLElement {
  const list = h("ul", { class: "plain", id: "ingress" });
  const load = async () => {
    try {
      const rules = await all<Rule>(`${containerPath(c.id)}/ingress`, "rules");
      fill(
        list,
        ...rules.map((r) =>
          h(
            "li",
            {},
            `port ${r.port} → ${r.target_port} `,
            h(
              "button",
              {
                type: "button",
                "aria-label": `Remove ingress port ${r.port}`,
                onclick: async () => {
                  if (!(await confirmDialog(`Remove ingress on port ${r.port}?`, "Remove"))) return;
                  try {
                    await api("DELETE", `${containerPath(c.id)}/ingress/${r.port}`);
                    await load();
                  } catch (e) {
                    banner((e as Error).message);
                  }
                },
              },
              "Remove",
            ),
          ),
        ),
      );
      if (rules.length === 0) list.append(h("li", { class: "muted" }, "no rules"));
    } catch (e) {
      banner(`Cannot read ingress rules: ${(e as Error).message}`);
    }
  };
  const port = h("input", { type: "number", min: 1, max: 65535, id: "f-port", name: "port", required: true });
  const target = h("input", { type: "number", min: 1, max: 65535, id: "f-target_port", name: "target_port" });
  const form = h(
    "form",
    { class: "inline", "aria-label": "Add an ingress rule" },
    h("label", { for: "f-port" }, "Port"),
    port,
    h("label", { for: "f-target_port" }, "to container port"),
    target,
    h("button", { type: "submit" }, "Add"),
    h("p", { class: "field-error", "data-err": "port", role: "alert" }),
    h("p", { class: "field-error", "data-err": "target_port", role: "alert" }),
    h("p", { class: "field-error", "data-err": "body", role: "alert" }),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    try {
      await api("POST", `${containerPath(c.id)}/ingress`, {
        port: Number(port.value),
        ...(target.value ? { target_port: Number(target.value) } : {}),
      });
      form.reset();
      await load();
    } catch (e) {
      showErrors(form, e);
    }
  });
  void load();
  return h("section", { "aria-label": "Ingress" }, h("h2", {}, "Ingress"), list, form);
}

export function mountsSection(c: Container, changed: () => void): HTMLElement {
  const input = h("input", { id: "f-mount_paths", name: "mount_paths", value: c.mount_paths.join(", ") });
  const form = h(
    "form",
    { class: "inline", "aria-label": "Mount paths" },
    h("label", { for: "f-mount_paths" }, "Mount paths"),
    input,
    h("button", { type: "submit" }, "Save"),
    h("p", { class: "field-error", "data-err": "mount_paths", role: "alert" }),
    h("p", { class: "field-error", "data-err": "body", role: "alert" }),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    const paths = input.value.split(",").map((m) => m.trim()).filter(Boolean);
    if (c.status === "running" && !(await confirmDialog("Changing mounts re-creates the running container (data kept). Go on?", "Change"))) return;
    try {
      const r = await api<{ restarted?: boolean }>("PUT", `${containerPath(c.id)}/mounts`, { mount_paths: paths });
      banner(r.restarted ? "Mounts changed; the container was re-created" : "Mounts changed", true);
      changed();
    } catch (e) {
      showErrors(form, e);
    }
  });
  return h("section", { "aria-label": "Mounts" }, h("h2", {}, "Mounts"), form);
}
