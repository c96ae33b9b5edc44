// Message search for the web chat (GET /api/search/messages, contract v1.1).
//
// Its own module so that chat.js stays about conversations: chat.js calls
// initMessageSearch() once with the few things this needs from it. Results show the
// conversation, the sender, the time and the body with the matched words marked;
// choosing one opens its conversation at that message. Text reaches the DOM as text
// nodes only (through chat.js's el()): nothing a user wrote is parsed as HTML.

const SEARCH_DELAY_MS = 250;
const PAGE_SIZE = 20;
const HISTORY_PAGE = 100; // the most the history API returns at once
const CONTEXT = 25; // messages shown before the one found
// Opening at a message loads everything from just before it to the newest (the chat
// keeps one contiguous run per conversation, which new messages extend), in at most this
// many pages. Further back, the page shows one page from there, as a view not kept live.
const MAX_TAIL_PAGES = 20;

const $ = (id) => document.getElementById(id);

// Words as the server compares them: runs of letters and digits (marks kept with their
// letter), case folded, accents stripped by decomposition.
const RUN = /[\p{L}\p{N}\p{M}]+/gu;
const normalise = (text) => text.toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
const wordsOf = (text) => (normalise(text).match(/[\p{L}\p{N}]+/gu) ?? []);

let ctx = null; // what chat.js hands over
let query = null; // {q, words, conversationId}
let cursor = null;
let generation = 0; // a newer search makes the answers of older ones stale

/** The body as text nodes, each word that starts with a query word inside <mark>. */
function highlighted(body, words) {
  const parts = [];
  let last = 0;
  for (const match of body.matchAll(RUN)) {
    const hit = wordsOf(match[0]).some((w) => words.some((q) => w.startsWith(q)));
    if (!hit) continue;
    parts.push(body.slice(last, match.index), ctx.el("mark", {}, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(body.slice(last));
  return parts.filter((part) => part !== "");
}

function resultItem(message, words) {
  const conv = ctx.state.conversations.get(message.conversationId);
  const when = new Date(message.createdAt);
  return ctx.el("li", { dataset: { messageId: message.id } },
    ctx.el("button", { type: "button", class: "hit", onclick: () => openAt(message) },
      ctx.el("span", { class: "hit-head" },
        ctx.el("span", { class: "hit-conversation" }, conv ? ctx.titleOf(conv) : "Conversation"),
        ctx.el("span", { class: "hit-sender" }, ctx.userName(message.senderId)),
        ctx.el("time", { datetime: message.createdAt, title: when.toLocaleString() },
          when.toLocaleDateString([], { dateStyle: "medium" }) + " " +
          when.toLocaleTimeString([], { timeStyle: "short" }))),
      ctx.el("span", { class: "hit-body" }, ...highlighted(message.body, words))));
}

async function fetchPage(mine) {
  const params = new URLSearchParams({ q: query.q, limit: String(PAGE_SIZE) });
  if (cursor) params.set("cursor", cursor);
  const page = await ctx.api("GET", `/api/search/messages?${params}`);
  if (mine !== generation) return; // the user typed on meanwhile
  await ctx.loadUsers(page.messages.map((m) => m.senderId));
  if (mine !== generation) return;
  cursor = page.nextCursor;
  const list = $("message-search-results");
  list.append(...page.messages.map((m) => resultItem(m, query.words)));
  if (!list.children.length) list.append(ctx.el("li", { class: "muted" }, "No messages found"));
  $("message-search-more").hidden = !cursor;
}

async function runSearch() {
  const q = $("message-search-input").value.trim();
  const mine = ++generation;
  cursor = null;
  $("message-search-results").replaceChildren();
  $("message-search-more").hidden = true;
  if (!q || !wordsOf(q).length) return; // the server would refuse it: nothing to look for
  query = { q, words: wordsOf(q) };
  try {
    await fetchPage(mine);
  } catch (err) {
    if (mine === generation) {
      $("message-search-results").replaceChildren(ctx.el("li", { class: "error" }, err.message));
    }
  }
}

/** Open the message's conversation with the history around it, and point at it. */
async function openAt(message) {
  const id = message.conversationId;
  const newestSeq = ctx.state.conversations.get(id)?.lastSeq ?? message.seq;
  // Close enough to the newest: load all of it, as one run the chat keeps live. Further
  // back: one page around it, shown as a view that is not kept.
  const pages = newestSeq - message.seq + CONTEXT <= MAX_TAIL_PAGES * HISTORY_PAGE
    ? MAX_TAIL_PAGES : 1;
  // A fresh run for the conversation, registered before loading: messages arriving
  // meanwhile merge into it, as they do while the chat's own history loads.
  ctx.state.threads.delete(id);
  const thread = ctx.threadOf(id);
  let after = Math.max(message.seq - CONTEXT - 1, 0);
  let reachedNewest = false;
  for (let page = 0; page < pages && !reachedNewest; page++) {
    const params = new URLSearchParams({ after: String(after), limit: String(HISTORY_PAGE) });
    const url = `/api/conversations/${encodeURIComponent(id)}/messages?${params}`;
    const found = await ctx.api("GET", url);
    for (const m of found.messages) ctx.mergeIntoThread(thread, m);
    reachedNewest = !found.hasMore;
    after = found.messages.at(-1)?.seq ?? after;
  }
  thread.hasMore = (thread.messages[0]?.seq ?? 1) > 1;
  thread.loaded = true;
  await ctx.openConversation(id);
  if (!reachedNewest) {
    // Not connected to the newest messages: shown, not kept. Choosing the conversation
    // again loads its newest messages.
    ctx.state.threads.delete(id);
    $("load-older").hidden = true;
  }
  const item = $("message-list").querySelector(`[data-seq="${message.seq}"]`);
  if (!item) return;
  for (const old of $("message-list").querySelectorAll(".search-hit")) {
    old.classList.remove("search-hit");
  }
  item.classList.add("search-hit");
  item.scrollIntoView({ block: "center" });
}

export function initMessageSearch(hooks) {
  ctx = hooks;
  let timer;
  $("message-search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    runSearch().catch(() => {});
  });
  $("message-search-input").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => runSearch().catch(() => {}), SEARCH_DELAY_MS);
  });
  $("message-search-more").addEventListener("click", () => {
    fetchPage(generation).catch(() => {});
  });
}

/** Forget every result (on sign-out). */
export function clearMessageSearch() {
  generation += 1;
  query = null;
  cursor = null;
  $("message-search-input").value = "";
  $("message-search-results").replaceChildren();
  $("message-search-more").hidden = true;
}
