// The console's entry: who is signed in (`GET /compute/session`), signing in with a token
// (pasted, or `#token=` in a link an operator hands out: the fragment never reaches a
// server's logs and is wiped at once) and out, and the hash router over the pages.

import "./style.css";
import { ApiError, api, type Session } from "./api";
import { banner, fill, h } from "./dom";
import { containersPage } from "./list";
import { containerPage } from "./container";
import { hostsPage, keysPage } from "./account";
import { Live } from "./live";

const main = document.getElementById("main")!;
const nav = document.getElementById("nav")!;
const who = document.getElementById("who")!;
let session: Session | null = null;
let leave: (() => void) | void;
const live = new Live(document.getElementById("link-state")!, () => {
  session = null;
  banner("Your session has ended (the token expired): sign in again.");
  route();
});

async function signIn(token: string): Promise<void> {
  session = await api<Session>("POST", "/compute/session", { token });
  live.start();
}

async function signOut(): Promise<void> {
  try {
    await api("DELETE", "/compute/session");
  } catch (e) {
    banner((e as Error).message);
  }
  session = null;
  live.stop();
  location.hash = "#/";
  route();
}

function signInPage(): void {
  const token = h("textarea", { id: "f-token", name: "token", rows: 4, required: true, autocomplete: "off", spellcheck: "false" });
  const err = h("p", { class: "field-error", role: "alert", id: "err-token" });
  const form = h(
    "form",
    { class: "create signin", "aria-label": "Sign in" },
    h("h1", {}, "Sign in"),
    h("div", { class: "field" }, h("label", { for: "f-token" }, "API token"), token, err),
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    try {
      await signIn(token.value.trim());
      route();
    } catch (e) {
      err.textContent = e instanceof ApiError && e.status === 401 ? "That token is not valid (or has expired)." : (e as Error).message;
    }
  });
  fill(main, form);
  token.focus();
}

function header(): void {
  if (!session) {
    fill(nav);
    fill(who);
    return;
  }
  const link = (href: string, text: string) => h("a", { href, "aria-current": location.hash === href ? "page" : undefined }, text);
  fill(nav, link("#/", "Containers"), link("#/keys", "Keys"), session.admin ? link("#/hosts", "Hosts") : null);
  fill(who, h("span", { id: "user" }, session.user), " ", h("button", { type: "button", id: "sign-out", onclick: () => void signOut() }, "Sign out"));
}

function route(): void {
  if (leave) leave();
  leave = undefined;
  header();
  if (!session) {
    signInPage();
    return;
  }
  const hash = location.hash || "#/";
  const one = /^#\/containers\/([A-Za-z0-9]+)$/.exec(hash);
  if (one) leave = containerPage(main, live, one[1]);
  else if (hash === "#/keys") keysPage(main);
  else if (hash === "#/hosts" && session.admin) leave = hostsPage(main);
  else leave = containersPage(main, live);
  main.focus();
}

async function boot(): Promise<void> {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const handed = fragment.get("token");
  if (handed) {
    history.replaceState(null, "", location.pathname + "#/");
    try {
      await signIn(handed);
    } catch (e) {
      banner(`The sign-in link did not work: ${(e as Error).message}`);
    }
  }
  if (!session) {
    try {
      session = await api<Session>("GET", "/compute/session");
      live.start();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) banner((e as Error).message);
    }
  }
  window.addEventListener("hashchange", route);
  route();
}

void boot();
