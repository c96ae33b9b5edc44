// chatcore web chat: one ES module, no build step, no framework.
//
// It talks to the HTTP API under /api and to Socket.IO through the vendored client
// (/static/vendor/socket.io.min.js, the global `io`), as docs/http-api.md and
// docs/realtime.md describe. Every piece of user text reaches the DOM as a text node
// (see el()): nothing a user wrote is ever parsed as HTML.

import { clearMessageSearch, initMessageSearch } from "./search.js";
import { attachMentionAutocomplete, bodyNodes, mentionBadge, messageExtras } from "./social.js";

const SESSION_KEY = "chatcore.session";
const PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 100; // the most messages one history request returns
const SEARCH_DELAY_MS = 250;
const TYPING_IDLE_MS = 3000; // we announce "stopped typing" after this long without a key
const TYPING_SHOW_MS = 6000; // someone's indicator expires if their "stopped" never arrives
const ACK_TIMEOUT_MS = 10000;
const SYNC_LIMIT = 500; // the server returns at most this many messages per conversation

const $ = (id) => document.getElementById(id);

const state = {
  session: null, // {accessToken, refreshToken, user}, mirrored in sessionStorage
  socket: null,
  conversations: new Map(), // id -> Conversation as the server shapes it, kept current
  users: new Map(), // id -> User
  presence: new Map(), // userId -> {online, lastSeenAt}
  // conversationId -> {messages (ascending seq), pending, hasMore, loaded, stale}
  threads: new Map(),
  receipts: new Map(), // conversationId -> Map(userId -> lastReadSeq)
  typing: new Map(), // conversationId -> Map(userId -> expiry timer)
  openId: null,
  replies: null, // the open thread panel: {conversationId, rootId, messages, loaded}
  myTyping: null, // {conversationId, timer} while we tell others we are typing
  authFailures: 0,
  connectedBefore: false,
};

// --- small helpers -------------------------------------------------------------------

/** Build an element. String children become text nodes: they are never parsed. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function showError(id, message) {
  $(id).textContent = message ?? "";
  $(id).hidden = !message;
}

const me = () => state.session?.user;
const nameOf = (user) => user.displayName || user.username;
const userName = (id) => (state.users.has(id) ? nameOf(state.users.get(id)) : "…");
const path = (template, ...ids) => template.replace(/\{\}/g, () => encodeURIComponent(ids.shift()));
const timeOf = (iso) => new Date(iso).toLocaleTimeString([], { timeStyle: "short" });
const quietly = (promise) => promise.catch(() => {}); // failures already show in the UI

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// crypto.randomUUID() exists only in secure contexts (https, localhost); a chat served
// over plain http on a LAN address still needs unique clientMsgIds.
function newClientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- session and HTTP ----------------------------------------------------------------

function setSession(auth) {
  state.session = auth && {
    accessToken: auth.accessToken, refreshToken: auth.refreshToken, user: auth.user,
  };
  if (state.session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  else sessionStorage.removeItem(SESSION_KEY);
}

async function request(method, url, body, token) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method, headers, body: JSON.stringify(body) });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const error = data?.error ?? { code: "http_error", message: response.statusText };
  throw Object.assign(new Error(error.message), { status: response.status, code: error.code });
}

/** An authenticated call. A refused access token (it expired) is renewed once, then retried. */
async function api(method, url, body) {
  try {
    return await request(method, url, body, state.session?.accessToken);
  } catch (err) {
    if (err.status !== 401 || !state.session) throw err;
    await refreshTokens();
    return request(method, url, body, state.session.accessToken);
  }
}

let refreshing = null;
/** One refresh at a time: the server rotates refresh tokens, so a second concurrent
 * refresh with the same (by then spent) token would fail and log the user out. */
function refreshTokens() {
  refreshing ??= (async () => {
    try {
      const { refreshToken } = state.session;
      setSession(await request("POST", "/api/auth/refresh", { refreshToken }));
    } catch (err) {
      if (err.status === 401) signOut("Your session has expired. Please log in again.");
      throw err;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

// --- users, presence, conversations --------------------------------------------------

async function loadUsers(ids) {
  const missing = [...new Set(ids)].filter((id) => !state.users.has(id));
  if (!missing.length) return;
  const fetches = missing.map((id) => api("GET", path("/api/users/{}", id)));
  const found = await Promise.allSettled(fetches);
  for (const { value } of found) if (value) state.users.set(value.id, value);
  renderAll();
}

async function loadPresence(ids) {
  const others = [...new Set(ids)].filter((id) => id !== me().id);
  if (!others.length) return;
  const query = new URLSearchParams({ userIds: others.join(",") });
  const { presence } = await api("GET", `/api/presence?${query}`);
  for (const p of presence) state.presence.set(p.userId, p);
  renderAll();
}

const otherMember = (conv) => conv.memberIds.find((id) => id !== me().id);
const titleOf = (conv) => (conv.type === "group" ? conv.name : userName(otherMember(conv)));
const activityOf = (conv) => conv.lastMessage?.createdAt ?? conv.createdAt;
const isOnline = (conv) =>
  conv.type === "direct" && Boolean(state.presence.get(otherMember(conv))?.online);

/** A conversation we just learnt about, or a fresher server view of one. */
function upsertConversation(conv) {
  if (!conv.memberIds.includes(me().id)) {
    // We left, or were removed from, this group.
    state.conversations.delete(conv.id);
    if (state.openId === conv.id) closeConversation();
    return renderList();
  }
  state.conversations.set(conv.id, conv);
  renderList();
  if (conv.id === state.openId) renderHeader();
  quietly(loadUsers(conv.memberIds));
  quietly(loadPresence(conv.memberIds));
}

function newerOf(fetched) {
  const local = state.conversations.get(fetched.id);
  if (!local || local.lastSeq <= fetched.lastSeq) return fetched;
  const { lastSeq, lastMessage, unreadCount } = local;
  const unread = Math.max(unreadCount, fetched.unreadCount);
  return { ...fetched, lastSeq, lastMessage, unreadCount: unread };
}

async function loadConversations() {
  const all = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "100", ...(cursor && { cursor }) });
    const page = await api("GET", `/api/conversations?${query}`);
    all.push(...page.conversations);
    cursor = page.nextCursor;
  } while (cursor);
  // A message may have arrived live while the pages were loading: a fetched view older
  // than our copy must not take its newest message (and unread count) back.
  state.conversations = new Map(all.map((conv) => [conv.id, newerOf(conv)]));
  renderAll();
  const members = all.flatMap((conv) => conv.memberIds);
  await Promise.all([loadUsers(members), loadPresence(members)]);
}

// --- messages ------------------------------------------------------------------------

function threadOf(id) {
  if (!state.threads.has(id)) {
    state.threads.set(id, {
      messages: [], pending: [], hasMore: false, loaded: false, stale: false,
    });
  }
  return state.threads.get(id);
}

/** Put a stored message in its thread (by seq, replacing an older copy of it), and drop
 * the optimistic copy it confirms. */
function mergeIntoThread(thread, message) {
  if (message.clientMsgId && message.senderId === me().id) {
    thread.pending = thread.pending.filter((p) => p.clientMsgId !== message.clientMsgId);
  }
  const index = thread.messages.findIndex((m) => m.seq >= message.seq);
  if (index === -1) thread.messages.push(message);
  else thread.messages.splice(index, thread.messages[index].seq === message.seq ? 1 : 0, message);
}

/** A new message, from any path (live event, send ack, sync): safe to see twice. */
function applyMessage(message) {
  const conv = state.conversations.get(message.conversationId);
  if (!conv) {
    // Someone started a conversation with us: its server view already counts this message.
    const url = path("/api/conversations/{}", message.conversationId);
    return quietly(api("GET", url).then(upsertConversation));
  }
  if (message.seq > conv.lastSeq) {
    conv.lastSeq = message.seq;
    conv.lastMessage = message;
    if (message.senderId !== me().id && message.seq > conv.lastReadSeq) {
      conv.unreadCount += 1;
      if (message.mentions?.includes(me().id)) conv.unreadMentions = (conv.unreadMentions ?? 0) + 1;
    }
  }
  applyReply(message);
  // Also into a thread whose history is still loading: the page may not include it.
  const thread = state.threads.get(conv.id);
  if (thread) mergeIntoThread(thread, message);
  stopShowingTyping(conv.id, message.senderId); // they sent what they were typing
  renderList();
  if (conv.id === state.openId) {
    renderThread();
    markRead();
    if (message.senderId !== me().id) {
      $("announcer").textContent = `${userName(message.senderId)}: ${message.body}`;
    }
  }
}

/** An edited or deleted message: replace our copy wherever it shows. */
function applyChange(message) {
  const conv = state.conversations.get(message.conversationId);
  if (!conv) return;
  if (conv.lastMessage?.id === message.id) conv.lastMessage = message;
  const thread = state.threads.get(conv.id);
  if (thread?.messages.some((m) => m.id === message.id)) mergeIntoThread(thread, message);
  applyReply(message);
  renderList();
  if (conv.id === state.openId) renderThread();
}

// --- threads and reactions (contract v1.1; the pieces of UI are in social.js) ------------

/** A reply (new or changed) of the open thread panel, or its root: show it there. */
function applyReply(message) {
  const panel = state.replies;
  if (!panel?.loaded) return;
  if (message.threadId === panel.rootId) {
    const at = panel.messages.findIndex((m) => m.seq >= message.seq);
    if (at === -1) panel.messages.push(message);
    else panel.messages.splice(at, panel.messages[at].seq === message.seq ? 1 : 0, message);
  }
  if (message.threadId === panel.rootId || message.id === panel.rootId) renderReplies();
}

async function openReplies(conversationId, rootId) {
  state.replies = { conversationId, rootId, messages: [], loaded: false };
  $("thread-panel").hidden = false;
  $("reply-list").replaceChildren();
  renderReplies();
  const query = new URLSearchParams({ threadId: rootId, limit: "100" });
  const page = await api("GET", `${path("/api/conversations/{}/messages", conversationId)}?${query}`);
  if (state.replies?.rootId !== rootId) return; // another thread was opened meanwhile
  state.replies.messages = page.messages;
  state.replies.loaded = true;
  renderReplies();
  $("reply-input").focus();
}

function closeReplies() {
  state.replies = null;
  $("thread-panel").hidden = true;
}

function renderReplies() {
  const panel = state.replies;
  const conv = panel && state.conversations.get(panel.conversationId);
  if (!conv) return;
  const root = state.threads.get(conv.id)?.messages.find((m) => m.id === panel.rootId);
  const item = (message) => messageItem(conv, message, { showSender: true, inThread: true });
  $("thread-root").replaceChildren(...(root ? [item(root)] : []));
  const count = root?.thread?.replyCount ?? panel.messages.length;
  $("thread-count").textContent = `${count} ${count === 1 ? "reply" : "replies"}`;
  $("reply-list").replaceChildren(...panel.messages.map(item));
  const box = $("thread-messages");
  box.scrollTop = box.scrollHeight;
}

function sendReply(body) {
  const { conversationId, rootId } = state.replies;
  const payload = { conversationId, body, clientMsgId: newClientMsgId(), threadId: rootId };
  state.socket.timeout(ACK_TIMEOUT_MS).emit("sendMessage", payload, (err, ack) => {
    if (!err && ack.ok) return applyMessage(ack.message);
    $("reply-input").value ||= body; // give the text back to try again
  });
}

function react(message, emoji, add) {
  const payload = { conversationId: message.conversationId, messageId: message.id, emoji, add };
  state.socket?.timeout(ACK_TIMEOUT_MS).emit("react", payload, (err, ack) => {
    if (!err && ack.ok) applyChange(ack.message);
  });
}

/** Members of the open conversation other than me, for the @ autocomplete. */
function mentionCandidates() {
  const conv = state.conversations.get(state.openId);
  if (!conv) return [];
  return conv.memberIds.filter((id) => id !== me().id && state.users.has(id))
    .map((id) => state.users.get(id));
}

async function loadHistory(id, before) {
  const thread = threadOf(id);
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...(before && { before }) });
  const page = await api("GET", `${path("/api/conversations/{}/messages", id)}?${query}`);
  for (const message of page.messages) mergeIntoThread(thread, message);
  thread.hasMore = page.hasMore; // older messages exist
  thread.loaded = true;
}

/** Read again the messages a thread already holds, oldest to newest, each replacing our
 * copy. After a reconnection: edits, deletions, reactions and thread summaries made while
 * we were away come with no event (`sync` brings only new messages). */
async function refreshHistory(id) {
  const thread = threadOf(id);
  thread.stale = false;
  if (!thread.messages.length) return;
  let after = thread.messages[0].seq - 1;
  const newest = thread.messages.at(-1).seq;
  while (after < newest) {
    const query = new URLSearchParams({ after: String(after), limit: String(MAX_PAGE_SIZE) });
    const page = await api("GET", `${path("/api/conversations/{}/messages", id)}?${query}`);
    for (const message of page.messages) mergeIntoThread(thread, message);
    if (!page.hasMore || !page.messages.length) break;
    after = page.messages.at(-1).seq;
  }
}

/** After a reconnection: what the page shows may have changed meanwhile. The open
 * conversation and thread panel are read again now, other loaded conversations when
 * they are next opened. */
async function refreshShown() {
  for (const [id, thread] of state.threads) thread.stale = thread.loaded && id !== state.openId;
  const openId = state.openId;
  if (openId && threadOf(openId).loaded) {
    await refreshHistory(openId);
    if (state.openId === openId) renderThread();
  }
  const panel = state.replies;
  if (panel?.loaded) {
    const query = new URLSearchParams({ threadId: panel.rootId, limit: String(MAX_PAGE_SIZE) });
    const url = `${path("/api/conversations/{}/messages", panel.conversationId)}?${query}`;
    const page = await api("GET", url);
    if (state.replies !== panel) return; // closed, or another thread opened, meanwhile
    panel.messages = page.messages;
    renderReplies();
  }
}

async function loadReceipts(id) {
  const { receipts } = await api("GET", path("/api/conversations/{}/receipts", id));
  state.receipts.set(id, new Map(receipts.map((r) => [r.userId, r.lastReadSeq])));
  if (id === state.openId) renderThread();
}

function applyReceipt({ conversationId, userId, lastReadSeq }) {
  const conv = state.conversations.get(conversationId);
  if (!conv) return;
  if (userId === me().id) {
    // We read it in another tab or on another device.
    if (lastReadSeq <= conv.lastReadSeq) return;
    conv.unreadCount = Math.max(0, Math.min(conv.unreadCount, conv.lastSeq - lastReadSeq));
    if (conv.unreadCount === 0) conv.unreadMentions = 0;
    conv.lastReadSeq = lastReadSeq;
    return renderList();
  }
  const readers = state.receipts.get(conversationId) ?? new Map();
  readers.set(userId, Math.max(readers.get(userId) ?? 0, lastReadSeq));
  state.receipts.set(conversationId, readers);
  if (conversationId === state.openId) renderThread();
}

/** Tell the server we read the open conversation, but only while someone can see it. */
function markRead() {
  const conv = state.conversations.get(state.openId);
  // Only for messages from others: moving past our own would just notify everyone.
  if (!conv || document.visibilityState !== "visible" || conv.unreadCount === 0) return;
  conv.lastReadSeq = conv.lastSeq; // optimistic: the pointer only ever moves forward
  conv.unreadCount = 0;
  conv.unreadMentions = 0;
  renderList();
  state.socket?.emit("readMessage", { conversationId: conv.id, upToSeq: conv.lastSeq }, () => {});
}

function sendMessage(body) {
  const pending = {
    conversationId: state.openId, body, clientMsgId: newClientMsgId(), senderId: me().id,
    createdAt: new Date().toISOString(),
  };
  threadOf(state.openId).pending.push(pending);
  emitPending(pending);
  renderThread({ toBottom: true });
}

/** Send, or send again (the clientMsgId makes that idempotent), until the server acks. */
function emitPending(pending) {
  const { conversationId, body, clientMsgId } = pending;
  pending.status = "pending";
  // socket.io buffers emits while disconnected; the timeout bounds how long we say "sending".
  state.socket.timeout(ACK_TIMEOUT_MS).emit(
    "sendMessage", { conversationId, body, clientMsgId }, (err, ack) => {
      if (!err && ack.ok) return applyMessage(ack.message);
      pending.status = "failed";
      pending.error = err ? "no answer from the server" : ack.error.message;
      if (conversationId === state.openId) renderThread();
    },
  );
}

// --- typing --------------------------------------------------------------------------

/** On each keystroke: announce once, then "stopped" after a pause (not an event per key). */
function noteTyping() {
  const conversationId = state.openId;
  if (state.myTyping?.conversationId !== conversationId) {
    stopTyping();
    state.socket?.emit("typing", { conversationId, isTyping: true }, () => {});
    state.myTyping = { conversationId, timer: null };
  }
  clearTimeout(state.myTyping.timer);
  state.myTyping.timer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  if (!state.myTyping) return;
  const { conversationId, timer } = state.myTyping;
  clearTimeout(timer);
  state.socket?.emit("typing", { conversationId, isTyping: false }, () => {});
  state.myTyping = null;
}

function onTyping({ conversationId, userId, isTyping }) {
  stopShowingTyping(conversationId, userId);
  if (!isTyping) return;
  const typers = state.typing.get(conversationId) ?? new Map();
  typers.set(userId, setTimeout(() => stopShowingTyping(conversationId, userId), TYPING_SHOW_MS));
  state.typing.set(conversationId, typers);
  renderTyping();
  renderList();
}

function stopShowingTyping(conversationId, userId) {
  const typers = state.typing.get(conversationId);
  if (!typers?.has(userId)) return;
  clearTimeout(typers.get(userId));
  typers.delete(userId);
  renderTyping();
  renderList();
}

// --- Socket.IO -----------------------------------------------------------------------

function setConnection(kind, text) {
  $("connection").dataset.state = kind;
  $("connection").textContent = text;
}

function connectSocket() {
  // `auth` as a function: every (re)connection presents the current, maybe renewed, token.
  const socket = io({ auth: (cb) => cb({ token: state.session?.accessToken }) });
  state.socket = socket;
  socket.on("connect", () => {
    state.authFailures = 0;
    setConnection("online", "Online");
    quietly(catchUp());
  });
  // `socket.active`: socket.io will retry by itself (network trouble, not a refusal).
  const lost = () => setConnection("offline", socket.active ? "Reconnecting…" : "Offline");
  socket.on("disconnect", (reason) => {
    // The server closes a socket when its access token expires (after `sessionExpired`):
    // renew the token and connect again at once; `sync` then fetches anything missed.
    if (reason === "io server disconnect" && state.tokenExpired) {
      state.tokenExpired = false;
      refreshTokens().then(() => socket.connect(), () => {});
      return;
    }
    lost();
  });
  socket.on("sessionExpired", () => {
    state.tokenExpired = true;
  });
  socket.on("connect_error", (err) => {
    lost();
    // A refused handshake is not retried: our access token expired. Renew it and connect
    // again (a few times at most).
    if (err.data?.code !== "unauthorized" || state.authFailures++ >= 3) return;
    refreshTokens().then(() => socket.connect(), () => {});
  });
  socket.on("newMessage", applyMessage);
  socket.on("messageUpdated", applyChange);
  socket.on("messageDeleted", applyChange);
  socket.on("messageRead", applyReceipt);
  socket.on("typing", onTyping);
  socket.on("conversationUpdated", upsertConversation);
  socket.on("userOnline", ({ userId }) => setPresence({ userId, online: true }));
  socket.on("userOffline", (presence) => setPresence({ ...presence, online: false }));
}

function setPresence(presence) {
  state.presence.set(presence.userId, presence);
  renderList();
  renderHeader();
}

/** After every (re)connection: fetch by seq what was sent while we were away; after a
 * reconnection, also refresh the list (new conversations, unread counts). */
async function catchUp() {
  let since = Object.fromEntries([...state.conversations.values()].map((c) => [c.id, c.lastSeq]));
  while (Object.keys(since).length) {
    const ack = await state.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("sync", { since });
    if (!ack.ok) throw new Error(ack.error.message);
    ack.messages.forEach(applyMessage);
    // A conversation that reached the server's cap may have more: ask from where it stopped.
    const counts = {};
    for (const m of ack.messages) counts[m.conversationId] = (counts[m.conversationId] ?? 0) + 1;
    const capped = Object.keys(counts).filter((id) => counts[id] >= SYNC_LIMIT);
    since = Object.fromEntries(capped.map((id) => [id, state.conversations.get(id).lastSeq]));
  }
  if (state.connectedBefore) {
    await loadConversations();
    await refreshShown();
    markRead();
    if (state.openId) await loadReceipts(state.openId);
  }
  state.connectedBefore = true;
}

// --- rendering -----------------------------------------------------------------------

function renderAll() {
  renderList();
  renderHeader();
  renderThread();
}

function conversationItem(conv) {
  const unread = conv.unreadCount > 0;
  const online = isOnline(conv);
  const last = conv.lastMessage;
  let preview = "No messages yet";
  if (state.typing.get(conv.id)?.size) preview = "typing…";
  else if (last) {
    const body = last.deletedAt ? "Message deleted" : last.body;
    preview = last.senderId === me().id ? `You: ${body}` : body;
  }
  const mentions = conv.unreadMentions > 0 && `${conv.unreadMentions} unread mentions`;
  const label = [titleOf(conv), online && "online", unread && `${conv.unreadCount} unread`,
    mentions].filter(Boolean).join(", ");
  return el("li", { dataset: { conversationId: conv.id } },
    el("button", {
      type: "button", class: unread ? "unread" : null, "aria-label": label,
      "aria-current": conv.id === state.openId ? "true" : null,
      onclick: () => quietly(openConversation(conv.id)),
    },
    el("span", { class: `dot ${conv.type === "group" ? "group" : online ? "online" : ""}` }),
    el("span", { class: "title" }, titleOf(conv)),
    el("span", { class: `preview${preview === "typing…" ? " typing-now" : ""}` }, preview),
    unread ? el("span", { class: "badge" }, String(conv.unreadCount)) : null,
    mentionBadge(el, conv)));
}

function renderList() {
  if (!state.session) return;
  const items = [...state.conversations.values()]
    .sort((a, b) => activityOf(b).localeCompare(activityOf(a)));
  // Re-rendering replaces the buttons: give keyboard focus back to the one that had it.
  const focused = document.activeElement?.closest("#conversation-list li")?.dataset.conversationId;
  $("conversation-list").replaceChildren(...items.map(conversationItem));
  if (focused) {
    $("conversation-list").querySelector(`[data-conversation-id="${CSS.escape(focused)}"] button`)
      ?.focus();
  }
  $("no-conversations").hidden = items.length > 0;
  const unread = items.reduce((sum, conv) => sum + conv.unreadCount, 0);
  document.title = unread ? `(${unread}) chatcore` : "chatcore";
}

function renderHeader() {
  const conv = state.conversations.get(state.openId);
  if (!conv) return;
  $("conversation-title").textContent = titleOf(conv);
  $("conversation-dot").hidden = conv.type === "group";
  $("conversation-dot").className = `dot${isOnline(conv) ? " online" : ""}`;
  const presence = state.presence.get(otherMember(conv));
  let status = presence?.online ? "online" : "offline";
  if (conv.type === "group") status = `${conv.memberIds.length} members`;
  else if (!presence?.online && presence?.lastSeenAt) {
    status = `last seen ${new Date(presence.lastSeenAt).toLocaleString()}`;
  }
  $("conversation-status").textContent = status;
}

function renderTyping() {
  const names = [...(state.typing.get(state.openId)?.keys() ?? [])].map(userName);
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = "Several people are typing…";
  $("typing").textContent = text;
}

/** pending / failed (not stored yet), then sent, then read (by how many, in a group). */
function statusOf(conv, message) {
  if (message.status) return message.status;
  const readers = [...(state.receipts.get(conv.id)?.entries() ?? [])]
    .filter(([userId, seq]) => userId !== me().id && seq >= message.seq).length;
  if (!readers) return "sent";
  return conv.type === "group" ? `read by ${readers}` : "read";
}

function messageItem(conv, message, { showSender, showStatus, inThread = false }) {
  const mine = message.senderId === me().id;
  const status = mine ? statusOf(conv, message) : null;
  const text = { pending: "sending…", failed: `not sent: ${message.error}` }[status] ?? status;
  const retry = () => {
    emitPending(message);
    renderThread();
  };
  return el("li", {
    class: `message ${mine ? "mine" : "theirs"}${message.deletedAt ? " deleted" : ""}`,
    dataset: { seq: message.seq ?? "", status: status ?? "" },
  },
  showSender ? el("span", { class: "sender" }, userName(message.senderId)) : null,
  el("p", { class: "body" }, ...(message.deletedAt ? ["Message deleted"]
    : bodyNodes(el, message.body, message.mentions, (id) => state.users.get(id)?.username,
      me().id))),
  el("span", { class: "meta" },
    el("time", { datetime: message.createdAt }, timeOf(message.createdAt)),
    message.editedAt && !message.deletedAt ? " · edited" : null,
    status && (showStatus || message.status) ? ` · ${text}` : null,
    status === "failed" ? el("button", { type: "button", class: "retry", onclick: retry }, "Retry")
      : null),
  // Stored, not deleted: reactions; and on top-level messages, the way into their thread.
  ...(message.id && !message.deletedAt ? messageExtras(el, message, me().id, {
    onToggle: (emoji, add) => react(message, emoji, add),
    nameOf: userName,
    onOpenThread: message.threadId || inThread ? null
      : () => quietly(openReplies(conv.id, message.id)),
  }) : []));
}

function renderThread({ toBottom = false, keepFromBottom = null } = {}) {
  const conv = state.conversations.get(state.openId);
  const thread = state.threads.get(state.openId);
  if (!conv || !thread?.loaded) return;
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  // Thread replies show in their thread panel, not in the timeline (as in Slack).
  const timeline = thread.messages.filter((m) => !m.threadId);
  const all = [...timeline, ...thread.pending];
  const lastMine = timeline.findLast((m) => m.senderId === me().id);
  $("message-list").replaceChildren(...all.map((message, i) => messageItem(conv, message, {
    // In groups, a run of messages from one person carries their name once.
    showSender: conv.type === "group" && message.senderId !== me().id
      && all[i - 1]?.senderId !== message.senderId,
    showStatus: message === lastMine,
  })));
  $("load-older").hidden = !thread.hasMore;
  if (keepFromBottom !== null) box.scrollTop = box.scrollHeight - keepFromBottom;
  else if (toBottom || atBottom) box.scrollTop = box.scrollHeight;
}

// --- views and actions ---------------------------------------------------------------

async function openConversation(id) {
  if (state.openId !== id) {
    stopTyping();
    closeReplies();
  }
  state.openId = id;
  $("no-conversation").hidden = true;
  $("conversation").hidden = false;
  $("chat-view").classList.add("showing-conversation");
  $("message-list").replaceChildren();
  $("load-older").hidden = true;
  renderList();
  renderHeader();
  renderTyping();
  if (!threadOf(id).loaded) await loadHistory(id);
  else if (threadOf(id).stale) await refreshHistory(id);
  if (state.openId !== id) return; // another conversation was opened meanwhile
  renderThread({ toBottom: true });
  markRead();
  $("composer-input").focus();
  await loadReceipts(id);
}

function closeConversation() {
  stopTyping();
  closeReplies();
  state.openId = null;
  $("conversation").hidden = true;
  $("no-conversation").hidden = false;
  $("chat-view").classList.remove("showing-conversation");
  renderList();
}

async function loadOlder() {
  const box = $("messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  await loadHistory(state.openId, threadOf(state.openId).messages[0]?.seq);
  renderThread({ keepFromBottom: fromBottom }); // the reader stays where they were
}

async function searchUsers(search, limit) {
  const query = new URLSearchParams({ search, limit: String(limit) });
  const { users } = await api("GET", `/api/users?${query}`);
  for (const user of users) state.users.set(user.id, user);
  return users;
}

async function runSearch() {
  const search = $("search-input").value.trim();
  if (!search) return $("search-results").replaceChildren();
  const users = await searchUsers(search, 10);
  if ($("search-input").value.trim() !== search) return; // a newer search is on its way
  const items = users.map((user) => el("li", {}, el("button", {
    type: "button", onclick: () => quietly(startDirect(user)),
  }, `Message ${nameOf(user)} (@${user.username})`)));
  $("search-results").replaceChildren(...items);
  if (!items.length) $("search-results").append(el("li", { class: "muted" }, "No one found"));
}

async function startDirect(user) {
  const conv = await api("POST", path("/api/conversations/direct/{}", user.id));
  $("search-input").value = "";
  $("search-results").replaceChildren();
  upsertConversation(conv);
  await openConversation(conv.id);
}

async function createGroup(event) {
  event.preventDefault();
  showError("group-error", null);
  const usernames = $("group-members").value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    // The API takes user ids: find each username with the search (an exact match only).
    const memberIds = await Promise.all(usernames.map(async (username) => {
      const users = await searchUsers(username, 50);
      const user = users.find((u) => u.username.toLowerCase() === username.toLowerCase());
      if (!user) throw new Error(`No user named "${username}"`);
      return user.id;
    }));
    const name = $("group-name").value.trim();
    const conv = await api("POST", "/api/conversations", { type: "group", name, memberIds });
    $("group-form").reset();
    $("group-box").open = false;
    upsertConversation(conv);
    await openConversation(conv.id);
  } catch (err) {
    showError("group-error", err.message);
  }
}

async function authenticate(event) {
  event.preventDefault();
  const mode = event.submitter?.value === "register" ? "register" : "login";
  const form = new FormData($("auth-form"));
  const body = { username: form.get("username").trim(), password: form.get("password") };
  const displayName = form.get("displayName").trim();
  if (mode === "register" && displayName) body.displayName = displayName;
  showError("auth-error", null);
  try {
    setSession(await request("POST", `/api/auth/${mode}`, body));
  } catch (err) {
    return showError("auth-error", err.message);
  }
  $("auth-form").reset();
  await enterChat();
}

async function enterChat() {
  $("auth-view").hidden = true;
  $("chat-view").hidden = false;
  $("me").textContent = nameOf(me());
  try {
    const user = await api("GET", "/api/users/me");
    setSession({ ...state.session, user });
    state.users.set(user.id, user);
    $("me").textContent = nameOf(user);
    await loadConversations();
  } catch (err) {
    if (state.session) setConnection("offline", `Could not load: ${err.message}`);
    return;
  }
  connectSocket();
}

function signOut(message) {
  stopTyping();
  state.socket?.disconnect();
  Object.assign(state, {
    socket: null, conversations: new Map(), threads: new Map(), receipts: new Map(),
    typing: new Map(), openId: null, replies: null, authFailures: 0, connectedBefore: false,
  });
  setSession(null);
  clearMessageSearch();
  closeConversation();
  ["conversation-list", "search-results", "message-list"].forEach((id) => $(id).replaceChildren());
  $("chat-view").hidden = true;
  $("auth-view").hidden = false;
  showError("auth-error", message);
  $("auth-username").focus();
}

async function logOut() {
  try {
    // Revoke the refresh token (an authenticated call), then forget everything here.
    await api("POST", "/api/auth/logout", { refreshToken: state.session.refreshToken });
  } catch {
    // Offline, or the session had expired anyway: signing out of this page still works.
  } finally {
    signOut(null);
  }
}

function wireUp() {
  $("auth-form").addEventListener("submit", authenticate);
  $("logout").addEventListener("click", logOut);
  $("search-form").addEventListener("submit", (event) => event.preventDefault());
  const search = debounce(() => quietly(runSearch()), SEARCH_DELAY_MS);
  $("search-input").addEventListener("input", search);
  $("group-form").addEventListener("submit", createGroup);
  $("back").addEventListener("click", closeConversation);
  $("load-older").addEventListener("click", () => quietly(loadOlder()));
  const input = $("composer-input");
  // Before the composer's own keydown: Enter picks a member while the list is open.
  attachMentionAutocomplete(el, input, $("mention-options"), mentionCandidates);
  const replyInput = $("reply-input");
  attachMentionAutocomplete(el, replyInput, $("reply-mention-options"), mentionCandidates);
  $("thread-close").addEventListener("click", closeReplies);
  $("reply-composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = replyInput.value.trim();
    if (!body || !state.socket || !state.replies?.loaded) return;
    replyInput.value = "";
    sendReply(body);
  });
  replyInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("reply-composer").requestSubmit();
    }
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body || !state.socket || !state.threads.get(state.openId)?.loaded) return;
    input.value = "";
    stopTyping();
    sendMessage(body);
  });
  input.addEventListener("input", () => (input.value.trim() ? noteTyping() : stopTyping()));
  input.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter (or Enter while composing with an IME) starts a new line.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("focus", markRead);
  // Back online (wifi back, laptop awake): connect now, not at the next backoff attempt.
  window.addEventListener("online", () => {
    if (state.socket && !state.socket.connected) state.socket.disconnect().connect();
  });
}

wireUp();
initMessageSearch({
  api, el, state, threadOf, mergeIntoThread, openConversation, loadUsers, titleOf, userName,
});
try {
  state.session = JSON.parse(sessionStorage.getItem(SESSION_KEY));
} catch {
  state.session = null;
}
if (state.session) {
  enterChat();
} else {
  $("auth-view").hidden = false;
  $("auth-username").focus();
}
