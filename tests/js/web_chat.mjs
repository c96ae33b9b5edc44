// The bundled web chat page (GET /) in headless Chromium, driven by playwright-core,
// for tests/web/test_web_chat_browser.py.
//
//   node web_chat.mjs <base-url> <screenshot-dir>
//
// Two users, each in a browser of their own (a fresh profile directory each), use the
// page the way people do: register, find each other, chat. They act through the UI only
// (plus sessionStorage, and the network switched off, where a step says so); what the
// pages show is reported, and the Python test asserts on it.
//
// stdout, one JSON object per line:
//   {"type": "observed", "name": <what>, "value": <what the page showed>}
//   {"type": "screenshot", "name": <name>, "path": <png>}
//   {"type": "request", "what": <name>, ...}  the test does something server-side, then
//                                             writes {"done": <name>} on stdin
//   {"type": "console", "page": <who>, "step": <step>, "text": <message>}  errors only
//   {"type": "error", "step": <step>, "message": <why>}   then exit code 1
//   {"type": "done"}
// Chromium: /usr/bin/chromium (CHROMIUM to override); browsers are never downloaded.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [baseUrl, screenshotDir] = process.argv.slice(2);
if (!baseUrl || !screenshotDir) {
  process.stderr.write("usage: node web_chat.mjs <base-url> <screenshot-dir>\n");
  process.exit(2);
}
const STEP_TIMEOUT_MS = 5000; // every wait has this deadline; nothing sleeps a fixed time
const PASSWORD = "correct horse";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const observe = (name, value) => out({ type: "observed", name, value });
let step = "start";

// Requests to the Python side: answered by a line {"done": <what>} on stdin.
const answers = createInterface({ input: process.stdin });
const pendingAnswers = new Map();
answers.on("line", (line) => {
  if (!line.trim()) return;
  const { done } = JSON.parse(line);
  pendingAnswers.get(done)?.();
});
function ask(what, details = {}) {
  const answered = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${what}`)), STEP_TIMEOUT_MS * 2);
    pendingAnswers.set(what, () => { clearTimeout(timer); resolve(); });
  });
  out({ type: "request", what, ...details });
  return answered;
}

const profiles = [];
const browsers = [];

async function openPage(who) {
  const profile = mkdtempSync(join(tmpdir(), `chatcore-web-${who}-`));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1100, height: 720 },
    timeout: STEP_TIMEOUT_MS * 3,
  });
  browsers.push(context);
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    out({ type: "console", page: who, step, text: msg.text(), url: msg.location().url });
  });
  page.on("pageerror", (err) =>
    out({ type: "console", page: who, step, text: `uncaught: ${err.message}` }));
  await page.goto(baseUrl);
  return page;
}

async function screenshot(page, name) {
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path });
  out({ type: "screenshot", name, path });
}

async function register(page, username, displayName) {
  await page.getByLabel("Username", { exact: true }).fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Display name").fill(displayName);
  await page.getByRole("button", { name: "Register" }).click();
  await page.locator("#me", { hasText: displayName }).waitFor();
  await page.locator('#connection[data-state="online"]').waitFor();
}

const conversationItem = (page, title) =>
  page.locator("#conversation-list li").filter({ has: page.locator(".title", { hasText: title }) });
const lastMessage = (page) => page.locator("#message-list .message").last();

async function run() {
  step = "open pages";
  const [alice, bob] = await Promise.all([openPage("alice"), openPage("bob")]);
  observe("title", await alice.title());

  step = "log in before registering";
  await bob.getByLabel("Username", { exact: true }).fill("bob");
  await bob.getByLabel("Password").fill(PASSWORD);
  await bob.getByRole("button", { name: "Log in" }).click();
  const refused = bob.getByRole("alert").filter({ hasText: /\S/ });
  await refused.waitFor();
  observe("login refused", {
    alert: await refused.textContent(),
    chatHidden: await bob.locator("#chat-view").isHidden(),
  });

  step = "register";
  await Promise.all([register(alice, "alice", "Alice"), register(bob, "bob", "Bob")]);
  observe("registered", await alice.locator("#me").textContent());

  step = "search and open the direct conversation";
  await alice.getByLabel("Find people").fill("bo");
  await alice.getByRole("button", { name: "Message Bob (@bob)" }).click();
  await alice.locator("#conversation-title", { hasText: "Bob" }).waitFor();
  await alice.locator("#conversation-status", { hasText: "online" }).waitFor();
  observe("alice header", {
    title: await alice.locator("#conversation-title").textContent(),
    status: await alice.locator("#conversation-status").textContent(),
    dotOnline: await alice.locator("#conversation-dot.online").isVisible(),
  });

  step = "alice sends";
  const hello = "Hello Bob! <b>not bold</b> & <img src=x onerror=alert(1)>";
  await alice.getByLabel("Message", { exact: true }).fill(hello);
  // Submitting and reading the DOM in one synchronous turn: the ack cannot have arrived yet.
  observe("status right after sending", await alice.evaluate(() => {
    document.getElementById("composer").requestSubmit();
    return document.querySelector("#message-list .message:last-child").dataset.status;
  }));
  await alice.locator('#message-list .message.mine[data-status="sent"]').waitFor();
  observe("alice sent", {
    text: await lastMessage(alice).locator(".body").textContent(),
    injectedElements: await alice.locator("#message-list b, #message-list img").count(),
    composer: await alice.getByLabel("Message", { exact: true }).inputValue(),
  });

  step = "bob sees it live, unread";
  const bobsItem = conversationItem(bob, "Alice");
  await bobsItem.locator(".badge", { hasText: "1" }).waitFor();
  await bob.waitForFunction(() => document.title === "(1) chatcore");
  observe("bob unread", {
    badge: await bobsItem.locator(".badge").textContent(),
    preview: await bobsItem.locator(".preview").textContent(),
    online: await bobsItem.locator(".dot.online").count(),
    title: await bob.title(),
  });
  await screenshot(bob, "bob-unread");

  step = "bob opens it: receipt";
  await bobsItem.getByRole("button").click();
  await bob.locator("#message-list .message.theirs .body", { hasText: "Hello Bob!" }).waitFor();
  await bobsItem.locator(".badge").waitFor({ state: "detached" });
  await alice.locator('#message-list .message.mine[data-status="read"]').waitFor();
  observe("alice sees read", await lastMessage(alice).locator(".meta").textContent());

  step = "bob types: alice sees it";
  await bob.getByLabel("Message", { exact: true }).pressSequentially("Hi Alice", { delay: 10 });
  await alice.locator("#typing", { hasText: "Bob is typing…" }).waitFor();
  observe("alice typing indicator", await alice.locator("#typing").textContent());
  await screenshot(alice, "alice-typing");

  step = "bob replies: alice sees it live";
  await bob.getByLabel("Message", { exact: true }).press("Enter");
  await alice.locator("#message-list .message.theirs .body", { hasText: "Hi Alice" }).waitFor();
  await alice.waitForFunction(() => document.getElementById("typing").textContent === "");
  await bob.locator('#message-list .message.mine[data-status="read"]').waitFor();
  observe("alice received", {
    bodies: await alice.locator("#message-list .message .body").allTextContents(),
    typing: await alice.locator("#typing").textContent(),
    unreadBadges: await alice.locator("#conversation-list .badge").count(),
    announced: await alice.locator("#announcer").textContent(),
  });
  observe("bob sees read", await lastMessage(bob).getAttribute("data-status"));

  step = "bob's network drops: sync catches up";
  await bob.context().setOffline(true);
  await bob.locator('#connection[data-state="offline"]').waitFor();
  await ask("send while bob is away", { body: "sent while you were away" });
  await bob.context().setOffline(false);
  await bob.locator("#message-list .message.theirs .body", { hasText: "sent while you were away" })
    .waitFor();
  await bob.locator('#connection[data-state="online"]').waitFor();
  observe("bob caught up", await bob.locator("#message-list .message .body").allTextContents());

  step = "alice creates a group";
  await alice.getByText("New group").click();
  await alice.getByLabel("Group name").fill("Team <3");
  await alice.getByLabel("Members").fill("bob");
  await alice.getByRole("button", { name: "Create group" }).click();
  await alice.locator("#conversation-title", { hasText: "Team <3" }).waitFor();
  await conversationItem(bob, "Team <3").waitFor();
  observe("group", {
    aliceStatus: await alice.locator("#conversation-status").textContent(),
    bobList: await bob.locator("#conversation-list .title").allTextContents(),
  });

  step = "bob fills the group while alice reads another conversation";
  await conversationItem(alice, "Bob").getByRole("button").click();
  await alice.locator("#conversation-title", { hasText: "Bob" }).waitFor();
  await ask("fill the group", { name: "Team <3", count: 60 });
  await conversationItem(alice, "Team <3").locator(".badge", { hasText: "60" }).waitFor();
  observe("group unread live", await alice.locator("#conversation-list .title").allTextContents());

  step = "an edit and a deletion show live";
  await ask("edit and delete", {
    edit: "Hi Alice", to: "Hi Alice, edited", remove: "sent while you were away",
  });
  await alice.locator("#message-list .message.deleted .body", { hasText: "Message deleted" })
    .waitFor();
  await alice.locator("#message-list .message .body", { hasText: "Hi Alice, edited" }).waitFor();
  observe("edited and deleted", {
    bodies: await alice.locator("#message-list .message .body").allTextContents(),
    editedMeta: await alice.locator("#message-list .message.theirs .meta").last().textContent(),
  });

  step = "alice's access token is refused: the refresh token renews it";
  const before = await alice.evaluate(() => JSON.parse(sessionStorage.getItem("chatcore.session")));
  await alice.evaluate(() => {
    const session = JSON.parse(sessionStorage.getItem("chatcore.session"));
    const refused = { ...session, accessToken: "expired.token.x" };
    sessionStorage.setItem("chatcore.session", JSON.stringify(refused));
  });
  await alice.reload();
  await alice.locator('#connection[data-state="online"]').waitFor();
  const after = await alice.evaluate(() => JSON.parse(sessionStorage.getItem("chatcore.session")));
  observe("tokens renewed", {
    refreshRotated: after.refreshToken !== before.refreshToken,
    accessReplaced: after.accessToken !== "expired.token.x",
    me: await alice.locator("#me").textContent(),
    conversations: await alice.locator("#conversation-list .title").allTextContents(),
  });

  step = "alice's socket outlives its token: the page renews it and reconnects";
  const spent = await alice.evaluate(() => JSON.parse(sessionStorage.getItem("chatcore.session")));
  await ask("expire alice's sockets");
  await alice.waitForFunction(
    (old) => JSON.parse(sessionStorage.getItem("chatcore.session")).refreshToken !== old,
    spent.refreshToken, { timeout: STEP_TIMEOUT_MS },
  );
  await alice.locator('#connection[data-state="online"]').waitFor();
  await ask("bob sends after the renewal", { body: "still here?" });
  const bobsChat = conversationItem(alice, "Bob");
  await bobsChat.locator(".preview", { hasText: "still here?" }).waitFor();
  observe("socket renewed", {
    connection: await alice.locator("#connection").textContent(),
    received: await bobsChat.locator(".preview").textContent(),
  });

  step = "history: load older";
  const group = conversationItem(alice, "Team <3");
  await group.locator(".badge", { hasText: "60" }).waitFor();
  await group.getByRole("button").click();
  await alice.locator("#message-list .message .body", { hasText: "group message 60" }).waitFor();
  const firstPage = await alice.locator("#message-list .message").count();
  const loadOlder = alice.getByRole("button", { name: "Load older messages" });
  const olderVisible = await loadOlder.isVisible();
  await loadOlder.click();
  await alice.locator("#message-list .message .body", { hasText: /^group message 1$/ }).waitFor();
  observe("history", {
    firstPage,
    olderVisible,
    afterLoad: await alice.locator("#message-list .message").count(),
    olderStillVisible: await loadOlder.isVisible(),
    firstBody: await alice.locator("#message-list .message .body").first().textContent(),
    sender: await alice.locator("#message-list .message .sender").first().textContent(),
  });
  await screenshot(alice, "alice-group");
  await screenshot(bob, "bob-direct");

  step = "alice searches her messages";
  const search = alice.getByLabel("Search messages");
  const hits = alice.locator("#message-search-results li");
  await search.fill("HELLO");
  await hits.filter({ hasText: "not bold" }).waitFor();
  const helloHit = hits.first();
  observe("search hello", {
    count: await hits.count(),
    conversation: await helloHit.locator(".hit-conversation").textContent(),
    sender: await helloHit.locator(".hit-sender").textContent(),
    time: Boolean(await helloHit.locator("time").getAttribute("datetime")),
    marks: await helloHit.locator("mark").allTextContents(),
    injectedElements: await alice.locator("#message-search-results b, #message-search-results img")
      .count(),
  });
  await search.fill("messa 5");
  await hits.filter({ hasText: /^Team <3/ }).nth(10).waitFor();
  const five = hits.filter({ has: alice.locator(".hit-body", { hasText: /^group message 5$/ }) });
  observe("search group", {
    bodies: await alice.locator("#message-search-results .hit-body").allTextContents(),
    marks: await five.locator("mark").allTextContents(),
  });
  await screenshot(alice, "alice-search");
  await five.getByRole("button").click();
  const found = alice.locator("#message-list .message.search-hit");
  await found.waitFor();
  await alice.waitForFunction(() => {
    const hit = document.querySelector("#message-list .search-hit");
    const box = document.getElementById("messages").getBoundingClientRect();
    const at = hit?.getBoundingClientRect();
    return at && at.top >= box.top && at.bottom <= box.bottom;
  });
  observe("search opened", {
    title: await alice.locator("#conversation-title").textContent(),
    hit: await found.locator(".body").textContent(),
    seq: await found.getAttribute("data-seq"),
    olderVisible: await alice.getByRole("button", { name: "Load older messages" }).isVisible(),
    newest: await lastMessage(alice).locator(".body").textContent(),
  });
  await screenshot(alice, "alice-search-opened");

  step = "narrow screen";
  await alice.setViewportSize({ width: 390, height: 720 });
  observe("narrow", {
    sidebarVisible: await alice.locator(".sidebar").isVisible(),
    conversationVisible: await alice.locator("#conversation").isVisible(),
  });
  await screenshot(alice, "alice-narrow");
  await alice.getByRole("button", { name: "Back to conversations" }).click();
  observe("narrow back", { sidebarVisible: await alice.locator(".sidebar").isVisible() });

  step = "a mention: autocomplete, badge, highlight";
  await alice.setViewportSize({ width: 1100, height: 720 });
  await conversationItem(alice, "Team <3").getByRole("button").click();
  await alice.locator("#conversation-title", { hasText: "Team <3" }).waitFor();
  const composer = alice.getByLabel("Message", { exact: true });
  await composer.pressSequentially("Look @b", { delay: 10 });
  await alice.locator("#mention-options li").first().waitFor();
  const options = await alice.locator("#mention-options li").allTextContents();
  await composer.press("Enter"); // picks the member; does not send
  const completed = await composer.inputValue();
  await composer.pressSequentially("what do you think?", { delay: 5 });
  await composer.press("Enter");
  await alice.locator("#message-list .message.mine .mention", { hasText: "@bob" }).waitFor();
  const bobsGroup = conversationItem(bob, "Team <3");
  await bobsGroup.locator(".mention-badge", { hasText: "@1" }).waitFor();
  observe("mention", {
    options,
    completed,
    badge: await bobsGroup.locator(".mention-badge").textContent(),
    label: await bobsGroup.getByRole("button").getAttribute("aria-label"),
  });
  await screenshot(bob, "bob-mention-badge");
  await bobsGroup.getByRole("button").click();
  const mentioned = bob.locator("#message-list .message.theirs", { hasText: "what do you think?" });
  await mentioned.locator(".mention.me").waitFor();
  await bobsGroup.locator(".mention-badge").waitFor({ state: "detached" });
  observe("mention seen", {
    body: await mentioned.locator(".body").textContent(),
    highlighted: await mentioned.locator(".mention.me").textContent(),
  });

  step = "reactions: picker and chips toggle";
  await mentioned.locator(".picker summary").click();
  await mentioned.getByRole("button", { name: "React with 🎉" }).click();
  const alicesMessage = alice.locator("#message-list .message.mine", {
    hasText: "what do you think?",
  });
  await alicesMessage.locator(".chip", { hasText: "🎉 1" }).waitFor();
  await alicesMessage.locator(".chip", { hasText: "🎉 1" }).click();
  await mentioned.locator('.chip[aria-pressed="true"]', { hasText: "🎉 2" }).waitFor();
  await alicesMessage.locator('.chip[aria-pressed="true"]', { hasText: "🎉 2" }).waitFor();
  observe("reactions", {
    alice: await alicesMessage.locator(".chip").allTextContents(),
    bobPressed: await mentioned.locator(".chip").getAttribute("aria-pressed"),
  });
  await mentioned.locator(".chip", { hasText: "🎉 2" }).click(); // bob takes his back
  await alicesMessage.locator(".chip", { hasText: "🎉 1" }).waitFor();
  observe("reaction removed", await alicesMessage.locator(".chip").allTextContents());

  step = "a thread reply";
  await mentioned.getByRole("button", { name: "Reply in thread" }).click();
  await bob.locator("#thread-panel").waitFor();
  await bob.getByLabel("Reply", { exact: true }).fill("I like it");
  await bob.getByLabel("Reply", { exact: true }).press("Enter");
  await bob.locator("#reply-list .message .body", { hasText: "I like it" }).waitFor();
  await alicesMessage.locator(".replies", { hasText: "1 reply" }).waitFor();
  await alicesMessage.locator(".replies").click();
  await alice.locator("#reply-list .message .body", { hasText: "I like it" }).waitFor();
  observe("thread", {
    aliceRoot: await alice.locator("#thread-root .message .body").textContent(),
    aliceReplies: await alice.locator("#reply-list .message .body").allTextContents(),
    aliceCount: await alice.locator("#thread-count").textContent(),
    bobCount: await bob.locator("#thread-count").textContent(),
    inTimeline: await alice.locator("#message-list .message .body", { hasText: "I like it" })
      .count(),
  });
  await screenshot(alice, "alice-thread");
  await screenshot(bob, "bob-thread");

  step = "bob's network drops again: messages he already sees are read again";
  await bob.context().setOffline(true);
  await bob.locator('#connection[data-state="offline"]').waitFor();
  await ask("change shown messages while bob is away", {
    group: "Team <3", root: "Look @bob what do you think?", to: "Look @bob what do you think now?",
    emoji: "👍", reply: "Me too",
  });
  await bob.context().setOffline(false);
  await bob.locator('#connection[data-state="online"]').waitFor();
  const changed = bob.locator("#message-list .message.theirs", { hasText: "think now?" });
  await changed.locator(".chip", { hasText: "👍 1" }).waitFor();
  await changed.locator(".replies", { hasText: "2 replies" }).waitFor();
  await bob.locator("#thread-count", { hasText: "2 replies" }).waitFor();
  await bob.locator("#reply-list .message .body", { hasText: "Me too" }).waitFor();
  observe("refreshed after reconnecting", {
    body: await changed.locator(".body").textContent(),
    edited: (await changed.locator(".meta").textContent()).endsWith(" · edited"),
    chips: await changed.locator(".chip").allTextContents(),
    replies: await changed.locator(".replies").textContent(),
    panelRoot: await bob.locator("#thread-root .message .body").textContent(),
    panelCount: await bob.locator("#thread-count").textContent(),
    panelReplies: await bob.locator("#reply-list .message .body").allTextContents(),
  });
  await screenshot(bob, "bob-refreshed");

  step = "log out";
  const loggedOut = bob.waitForResponse((r) => r.url().endsWith("/api/auth/logout"));
  await bob.getByRole("button", { name: "Log out" }).click();
  await bob.locator("#auth-form").waitFor();
  observe("logged out", {
    status: (await loggedOut).status(),
    session: await bob.evaluate(() => sessionStorage.getItem("chatcore.session")),
    listEmptied: await bob.locator("#conversation-list li").count(),
  });
  await screenshot(bob, "bob-logged-out");
}

let failed = false;
try {
  await run();
  out({ type: "done" });
} catch (err) {
  failed = true;
  out({ type: "error", step, message: String(err?.stack ?? err) });
} finally {
  await Promise.all(browsers.map((b) => b.close().catch(() => {})));
  for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
  answers.close();
  process.stdin.destroy(); // an open stdin would keep Node running
}
process.exitCode = failed ? 1 : 0;
