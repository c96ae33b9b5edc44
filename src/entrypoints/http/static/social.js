// Threads, reactions and @-mentions (contract v1.1) for the web chat, as an ES module
// that chat.js imports. Everything here builds DOM from data it is handed (through the
// `el` of chat.js, so user text stays text) or wires one input; chat.js owns the state,
// the socket and the HTTP calls.

/** The picker's emoji: the ones chat products offer first. */
export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "✅"];

// chatcore.limits' username characters: a mention is "@" + a whole run of them, not
// right after another one (so alice@example.org mentions nobody), as the server reads it.
const MENTION = /(?<![A-Za-z0-9_.@+\-])@([A-Za-z0-9_.@+\-]+)/g;
const TYPED_MENTION = /(?<![A-Za-z0-9_.@+\-])@([A-Za-z0-9_.+\-]*)$/;
const MAX_OPTIONS = 6;

/**
 * A message body as nodes: each `@name` that the server resolved to one of `mentions`
 * becomes a highlighted span (class "me" too when it names the viewer); the rest is text.
 */
export function bodyNodes(el, body, mentions, usernameOf, myId) {
  const ids = new Map();
  for (const id of mentions ?? []) {
    const username = usernameOf(id);
    if (username) ids.set(username.toLowerCase(), id);
  }
  if (!ids.size) return [body];
  const nodes = [];
  let last = 0;
  for (const match of body.matchAll(MENTION)) {
    const id = ids.get(match[1].toLowerCase());
    if (!id) continue;
    nodes.push(body.slice(last, match.index));
    nodes.push(el("span", { class: id === myId ? "mention me" : "mention" }, match[0]));
    last = match.index + match[0].length;
  }
  nodes.push(body.slice(last));
  return nodes;
}

/**
 * What a stored message shows besides its text: a row of reaction chips (count, pressed
 * when the viewer reacted; a click toggles) and "3 replies", when there are any; and a
 * toolbar that shows on hover or keyboard focus, with a picker of common emoji and
 * "Reply in thread". `onToggle(emoji, add)` reacts; `onOpenThread` (null: no thread
 * links, e.g. on replies) opens the thread.
 */
export function messageExtras(el, message, myId, { onToggle, nameOf, onOpenThread }) {
  const mine = (emoji) =>
    Boolean(message.reactions?.find((r) => r.emoji === emoji)?.userIds.includes(myId));
  const chips = (message.reactions ?? []).map((r) => {
    const pressed = r.userIds.includes(myId);
    return el("button", {
      type: "button", class: "chip", "aria-pressed": pressed ? "true" : "false",
      title: r.userIds.map(nameOf).join(", "), dataset: { emoji: r.emoji },
      onclick: () => onToggle(r.emoji, !pressed),
    }, `${r.emoji} ${r.userIds.length}`);
  });
  const count = onOpenThread ? message.thread?.replyCount ?? 0 : 0;
  const replies = count ? el("button", { type: "button", class: "replies", onclick: onOpenThread },
    `${count} ${count === 1 ? "reply" : "replies"}`) : null;
  const choose = (emoji) => (event) => {
    event.currentTarget.closest("details").open = false;
    onToggle(emoji, !mine(emoji));
  };
  const picker = el("details", { class: "picker" },
    el("summary", { title: "Add a reaction", "aria-label": "Add a reaction" }, "☺+"),
    el("div", { class: "picker-menu" }, ...COMMON_EMOJI.map((emoji) => el("button", {
      type: "button", "aria-label": `React with ${emoji}`, onclick: choose(emoji),
    }, emoji))));
  const reply = onOpenThread
    ? el("button", { type: "button", class: "reply", onclick: onOpenThread }, "Reply in thread")
    : null;
  return [
    chips.length || replies ? el("div", { class: "extras" }, ...chips, replies) : null,
    el("div", { class: "hover-actions" }, picker, reply),
  ];
}

/** The conversation list's unread-mention badge, e.g. "@2" (null when there are none). */
export function mentionBadge(el, conv) {
  const n = conv.unreadMentions ?? 0;
  return n > 0
    ? el("span", { class: "badge mention-badge", title: `${n} unread mentions` }, `@${n}`)
    : null;
}

/**
 * `@` autocomplete on a textarea: typing `@` and the start of a name lists the matching
 * members (`candidates()`: users other than the viewer) in `list`; a click, Enter or Tab
 * puts `@username ` in the text, arrows move, Escape closes. Attach it before any other
 * keydown listener of `input` (it stops Enter from also sending while the list is open).
 */
export function attachMentionAutocomplete(el, input, list, candidates) {
  let options = [];
  let active = 0;
  const close = () => {
    options = [];
    list.replaceChildren();
    list.hidden = true;
  };
  const typed = () => input.value.slice(0, input.selectionStart).match(TYPED_MENTION);
  const pick = (user) => {
    const match = typed();
    if (!match) return close();
    const start = input.selectionStart - match[1].length;
    const insert = `${user.username} `;
    input.value = input.value.slice(0, start) + insert + input.value.slice(input.selectionStart);
    input.selectionStart = input.selectionEnd = start + insert.length;
    close();
    input.focus();
  };
  const render = () => {
    list.replaceChildren(...options.map((user, i) => el("li", {
      role: "option", id: `${list.id}-${i}`, "aria-selected": i === active ? "true" : "false",
      onmousedown: (event) => event.preventDefault(), // keep the focus in the textarea
      onclick: () => pick(user),
    }, `@${user.username}`, el("span", { class: "muted" }, ` ${user.displayName}`))));
    list.hidden = options.length === 0;
    input.setAttribute("aria-activedescendant", options.length ? `${list.id}-${active}` : "");
  };
  input.addEventListener("input", () => {
    const match = typed();
    if (!match) return close();
    const prefix = match[1].toLowerCase();
    options = candidates()
      .filter((u) => u.username.toLowerCase().startsWith(prefix))
      .sort((a, b) => a.username.localeCompare(b.username))
      .slice(0, MAX_OPTIONS);
    active = 0;
    render();
  });
  input.addEventListener("keydown", (event) => {
    if (!options.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      active = (active + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
      render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      pick(options[active]);
    } else if (event.key === "Escape") {
      close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  });
  input.addEventListener("blur", close);
  close();
}
