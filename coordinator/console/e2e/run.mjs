// The console in a real browser: headless Chromium (Debian's) driven by playwright-core,
// against a real coordinator, agent and containerd that `tests/tests/console.rs` started.
// Exits non-zero, saying which step failed, if anything does. Screenshots go to $ARTIFACTS.
//
// Env: BERTH_API, ALICE_TOKEN, BOB_TOKEN, OPS_TOKEN (compute.admin), HOST_KEY, ARTIFACTS,
// CHROMIUM (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";

const api = process.env.BERTH_API;
const [alice, bob, ops] = [process.env.ALICE_TOKEN, process.env.BOB_TOKEN, process.env.OPS_TOKEN];
const hostKey = process.env.HOST_KEY;
const artifacts = process.env.ARTIFACTS ?? "target/console-artifacts";
if (!api || !alice || !bob || !ops || !hostKey) throw new Error("BERTH_API, ALICE_TOKEN, BOB_TOKEN, OPS_TOKEN and HOST_KEY are needed");
fs.mkdirSync(artifacts, { recursive: true });
const WAIT = 90_000;

let stepName = "start";
const step = (name) => {
  stepName = name;
  console.log(`console e2e: ${name}`);
};

/** The API called directly, as curl would: the ground truth the page is checked against. */
async function call(token, method, path, body) {
  const r = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // This machine's network is closed: no background connections, no sandbox as root.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
const page_errors = [];

async function signedIn(token, who, live = true) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => page_errors.push(`${who}: ${e.message}`));
  await page.goto(`${api}/console/`);
  // By keyboard: the token field has the focus; Tab to the button, Enter.
  await page.waitForSelector("#f-token:focus");
  await page.keyboard.insertText(token);
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#user:text-is("${who}")`);
  if (live) await page.waitForSelector("#link-state.ok");
  return { ctx, page };
}

try {
  step("a bad token is refused on the sign-in page");
  {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${api}/console/`);
    await page.fill("#f-token", `${alice.slice(0, -2)}xx`);
    await page.click("text=Sign in >> nth=-1");
    await page.waitForSelector("#err-token:has-text('not valid')", { timeout: WAIT });
    await ctx.close();
  }

  step("alice signs in; the cookie is HttpOnly and SameSite=Strict");
  const { ctx: actx, page } = await signedIn(alice, "alice");
  const cookie = (await actx.cookies()).find((c) => c.name === "berth_token");
  if (!cookie || !cookie.httpOnly || cookie.sameSite !== "Strict") throw new Error(`cookie: ${JSON.stringify(cookie)}`);
  if ((await page.evaluate(() => document.cookie)).includes("berth_token")) throw new Error("the page can read the token");

  step("the API's 422 details are shown beside the fields");
  await page.fill("#f-name", "Not A Name!");
  await page.click("form.create button[type=submit]");
  await page.waitForSelector("#err-name:not(:empty)");

  step("create a container and see it turn running without a reload");
  const marker = await page.evaluate(() => (window.__marker = Math.random()));
  await page.fill("#f-name", "web1");
  await page.click("form.create button[type=submit]");
  const row = page.locator("tr", { has: page.locator("a", { hasText: "web1" }) });
  await row.waitFor();
  const id = await row.getAttribute("data-id");
  await page.locator(`tr[data-id="${id}"][data-status="running"]`).waitFor();
  if ((await page.evaluate(() => window.__marker)) !== marker) throw new Error("the page reloaded");
  await page.screenshot({ path: `${artifacts}/containers.png`, fullPage: true });
  await page.setViewportSize({ width: 375, height: 800 });
  await page.screenshot({ path: `${artifacts}/containers-narrow.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });

  step("bob, signed in beside her, never sees alice's container");
  const { ctx: bctx, page: bpage } = await signedIn(bob, "bob");
  await bpage.waitForSelector("#no-containers:visible");
  if ((await bpage.locator(`tr[data-id="${id}"]`).count()) !== 0) throw new Error("bob sees alice's container");
  await bpage.goto(`${api}/console/#/containers/${id}`);
  await bpage.waitForSelector("h1:text-is('Not found')");
  if ((await bpage.content()).includes("web1")) throw new Error("bob's page names alice's container");

  step("the container's page: fields, the SSH command, metrics");
  await page.click(`tr[data-id="${id}"] a`);
  await page.waitForSelector("#status:text-is('running')");
  await page.waitForSelector(`dd[data-field="id"]:text-is("${id}")`);
  await page.waitForSelector("#metrics figcaption .now:not(:empty)");

  step("type `echo hi` in the terminal and read hi back");
  await page.click("text=Open terminal");
  await page.waitForSelector("text=connected");
  await page.click("#terminal .xterm");
  await page.keyboard.type("echo h''i\n");
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#terminal .xterm-rows > div")].some((r) => r.textContent.trim() === "hi"),
  );

  step("a log line written in the container appears while following");
  await page.click("text=Follow logs");
  await page.waitForSelector("text=following");
  const line = `console-log-${Date.now()}`;
  await page.click("#terminal .xterm");
  await page.keyboard.type(`echo ${line} > /proc/1/fd/1\n`);
  await page.waitForSelector(`#logs .line:has-text("${line}")`);
  await page.screenshot({ path: `${artifacts}/container.png`, fullPage: true });

  step("a cross-site form POST with the session cookie is refused");
  // Another origin of the same site (another port of 127.0.0.1): the browser sends the
  // SameSite=Strict cookie, so the coordinator's own check is what must refuse it.
  const evil = http.createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<form id=f method=POST enctype=text/plain action="${api}/compute/containers">
      <input name='{"name":"csrf","ssh_key_ids":[],"x":"' value='"}'></form><script>f.submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${api}/compute/containers` && r.request().method() === "POST"),
    page.goto(`http://127.0.0.1:${evil.address().port}/`),
  ]);
  evil.close();
  if (answer.status() !== 403) throw new Error(`cross-site POST answered ${answer.status()}`);
  const names = (await call(alice, "GET", "/compute/containers")).body.containers.map((c) => c.name);
  if (names.includes("csrf")) throw new Error("the cross-site POST made a container");

  step("stop, then delete with confirmation");
  await page.goto(`${api}/console/#/containers/${id}`);
  await page.waitForSelector("#status:text-is('running')");
  await page.click(".actions >> text=Stop");
  await page.waitForSelector("#status:text-is('stopped')");
  await page.click(".actions >> text=Delete");
  await page.click("dialog.confirm button[value=yes]");
  await page.waitForSelector("h1:text-is('Containers')");
  await page.waitForFunction((id) => !document.querySelector(`tr[data-id="${id}"]`), id);
  const gone = await call(alice, "GET", `/compute/containers/${id}`);
  if (gone.status !== 404) throw new Error(`deleted container answers ${gone.status}`);

  step("sign out clears the session");
  await page.click("#sign-out");
  await page.waitForSelector("#f-token");
  if ((await actx.cookies()).some((c) => c.name === "berth_token" && c.value)) throw new Error("cookie kept");

  step("an operator sees the hosts and cordons and uncordons one");
  if ((await bpage.locator("#nav a", { hasText: "Hosts" }).count()) !== 0) throw new Error("bob is offered the hosts");
  const { ctx: octx, page: opage } = await signedIn(ops, "ops", false); // an operator-only token has no containers to watch
  await opage.click("#nav >> text=Hosts");
  const host = opage.locator(`tr[data-host="${hostKey}"]`);
  await host.locator("text=connected").waitFor();
  await host.locator("button", { hasText: "Cordon" }).click();
  await host.locator("text=(cordoned)").waitFor();
  const listed = (await call(ops, "GET", "/compute/hosts")).body.hosts.find((x) => x.host_key === hostKey);
  if (!listed?.cordoned) throw new Error(`the API does not say cordoned: ${JSON.stringify(listed)}`);
  await opage.screenshot({ path: `${artifacts}/hosts.png`, fullPage: true });
  await host.locator("button", { hasText: "Uncordon" }).click();
  await host.locator("button", { hasText: "Cordon" }).waitFor();
  await octx.close();

  if (page_errors.length) throw new Error(`errors on the page: ${page_errors.join("; ")}`);
  await bctx.close();
  await actx.close();
  console.log("console e2e: passed");
} catch (e) {
  console.error(`console e2e: FAILED at "${stepName}": ${e.stack ?? e}`);
  for (const ctx of browser.contexts()) {
    for (const [i, p] of ctx.pages().entries()) {
      await p.screenshot({ path: `${artifacts}/failed-${i}.png`, fullPage: true }).catch(() => {});
    }
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
