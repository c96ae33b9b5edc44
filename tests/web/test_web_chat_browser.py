"""The web chat page in headless Chromium: two people chat through the page's UI.

``tests/js/web_chat.mjs`` drives two Chromium browsers with playwright-core and reports
what the pages showed as JSON lines; this test serves the real app (in-memory storage),
does the server-side parts of the scenario the script asks for (a message sent while bob's
browser is offline, an edit and a deletion, a burst of messages), and checks every
observation. Screenshots land in the test's
temporary directory (their paths are printed).

Skipped, with the reason shown, without Node, Chromium (/usr/bin/chromium, or
$CHROMIUM) or playwright-core (``cd tests/js && npm ci``). Browsers are never downloaded.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from realtime.livechat import LiveChat, User

JS_DIR = Path(__file__).resolve().parent.parent / "js"
SCRIPT = JS_DIR / "web_chat.mjs"
NODE = shutil.which("node")
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "correct horse"  # the one web_chat.mjs registers with
# The whole scenario: two browser starts and a few dozen steps, each waiting at most 5 s.
SCENARIO_TIMEOUT = 60.0

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"
    ),
    pytest.mark.skipif(
        not (JS_DIR / "node_modules" / "playwright-core").is_dir(),
        reason="playwright-core is not installed: run `cd tests/js && npm ci`",
    ),
]

HELLO = "Hello Bob! <b>not bold</b> & <img src=x onerror=alert(1)>"
REFUSED_STEP = "log in before registering"
TOKEN_STEP = "alice's access token is refused: the refresh token renews it"
OFFLINE_STEP = "bob's network drops: sync catches up"
REFRESH_STEP = "bob's network drops again: messages he already sees are read again"


async def _login(live: LiveChat, username: str) -> User:
    response = await live.http.post(
        "/api/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return User(id=body["user"]["id"], username=username, token=body["accessToken"])


async def _send_while_away(live: LiveChat, body: str) -> None:
    """Once the server has seen bob's page go (its browser is offline), alice sends:
    only the page's ``sync`` after it reconnects can bring him the message."""
    alice, bob = await _login(live, "alice"), await _login(live, "bob")
    await live.wait_socket_count(bob, 0)
    response = await live.http.post(
        f"/api/messages/{bob.id}", json={"body": body}, headers=live.auth(alice)
    )
    assert response.status_code == 201, response.text
    assert live.socket_count(bob) == 0


async def _fill_group(live: LiveChat, name: str, count: int) -> None:
    bob = await _login(live, "bob")
    listed = await live.http.get("/api/conversations", headers=live.auth(bob))
    [group] = [c for c in listed.json()["conversations"] if c["name"] == name]
    for n in range(1, count + 1):
        response = await live.http.post(
            f"/api/conversations/{group['id']}/messages",
            json={"body": f"group message {n}"},
            headers=live.auth(bob),
        )
        assert response.status_code == 201, response.text


async def _edit_and_delete(live: LiveChat, edit: str, to: str, remove: str) -> None:
    """Bob edits one of his messages, alice deletes one of hers (over HTTP, as another
    client of theirs would)."""
    alice, bob = await _login(live, "alice"), await _login(live, "bob")
    conversation_id = (await live.direct(alice, bob))["id"]
    messages = f"/api/conversations/{conversation_id}/messages"
    history = (await live.http.get(messages, headers=live.auth(alice))).json()["messages"]
    by_body = {m["body"]: m["id"] for m in history}
    edited = await live.http.patch(
        f"{messages}/{by_body[edit]}", json={"body": to}, headers=live.auth(bob)
    )
    assert edited.status_code == 200, edited.text
    deleted = await live.http.delete(f"{messages}/{by_body[remove]}", headers=live.auth(alice))
    assert deleted.status_code == 200, deleted.text


async def _expire_sockets(live: LiveChat, username: str) -> None:
    """What the server does when a socket's access token expires (handlers.py:
    ``sessionExpired``, then disconnect), to every socket of ``username`` now."""
    user = await _login(live, username)
    room = f"user:{user.id}"
    sids = [sid for sid, _ in live.sio.manager.get_participants("/", room)]
    assert sids
    for sid in sids:
        await live.sio.emit(
            "sessionExpired", {"code": "unauthorized", "message": "access token expired"}, to=sid
        )
        await live.sio.disconnect(sid)


async def _change_while_away(
    live: LiveChat, group: str, root: str, to: str, emoji: str, reply: str
) -> None:
    """While bob's page is gone, alice edits her message ``root`` in ``group``, reacts to
    it and replies in its thread: ``sync`` brings bob the reply, and nothing else brings
    him the edit, the reaction or the root's new reply count."""
    alice, bob = await _login(live, "alice"), await _login(live, "bob")
    await live.wait_socket_count(bob, 0)
    listed = await live.http.get("/api/conversations", headers=live.auth(alice))
    [conversation] = [c for c in listed.json()["conversations"] if c["name"] == group]
    messages = f"/api/conversations/{conversation['id']}/messages"
    history = (await live.http.get(messages, headers=live.auth(alice))).json()["messages"]
    [root_id] = [m["id"] for m in history if m["body"] == root]
    edited = await live.http.patch(
        f"{messages}/{root_id}", json={"body": to}, headers=live.auth(alice)
    )
    assert edited.status_code == 200, edited.text
    reacted = await live.http.put(
        f"{messages}/{root_id}/reactions/{quote(emoji)}", headers=live.auth(alice)
    )
    assert reacted.status_code == 200, reacted.text
    replied = await live.http.post(
        messages, json={"body": reply, "threadId": root_id}, headers=live.auth(alice)
    )
    assert replied.status_code == 201, replied.text
    assert live.socket_count(bob) == 0


async def _bob_sends(live: LiveChat, body: str) -> None:
    alice, bob = await _login(live, "alice"), await _login(live, "bob")
    response = await live.http.post(
        f"/api/messages/{alice.id}", json={"body": body}, headers=live.auth(bob)
    )
    assert response.status_code == 201, response.text


async def _answer(live: LiveChat, request: dict[str, Any]) -> None:
    what = request["what"]
    if what == "expire alice's sockets":
        await _expire_sockets(live, "alice")
    elif what == "bob sends after the renewal":
        await _bob_sends(live, request["body"])
    elif what == "send while bob is away":
        await _send_while_away(live, request["body"])
    elif what == "edit and delete":
        await _edit_and_delete(live, request["edit"], request["to"], request["remove"])
    elif what == "change shown messages while bob is away":
        await _change_while_away(
            live,
            request["group"],
            request["root"],
            request["to"],
            request["emoji"],
            request["reply"],
        )
    elif what == "fill the group":
        await _fill_group(live, request["name"], request["count"])
    else:
        raise AssertionError(f"web_chat.mjs asked for something unknown: {request}")


async def _run_scenario(live: LiveChat, shots: Path) -> list[dict[str, Any]]:
    """Run web_chat.mjs against ``live``; every line it printed, up to "done"."""
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(SCRIPT),
        live.url,
        str(shots),
        cwd=JS_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())  # drained meanwhile: never blocks
    lines: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            async for raw in process.stdout:
                line = json.loads(raw)
                lines.append(line)
                if line["type"] == "request":
                    await _answer(live, line)
                    process.stdin.write(json.dumps({"done": line["what"]}).encode() + b"\n")
                    await process.stdin.drain()
            returncode = await process.wait()
    except TimeoutError:
        raise AssertionError(
            f"the browser scenario took over {SCENARIO_TIMEOUT} s; last lines: {lines[-3:]}"
        ) from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    errors = (await stderr).decode(errors="replace")
    failures = [line for line in lines if line["type"] == "error"]
    assert not failures, f"{failures[0]['step']}: {failures[0]['message']}\nstderr: {errors}"
    assert returncode == 0, errors
    assert lines[-1] == {"type": "done"}
    return lines


async def test_two_people_chat_through_the_page(live: LiveChat, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()

    lines = await _run_scenario(live, shots)

    seen = {line["name"]: line["value"] for line in lines if line["type"] == "observed"}
    assert seen["title"] == "chatcore"
    # The server's message, shown in the form.
    assert seen["login refused"] == {"alert": "invalid username or password", "chatHidden": True}
    assert seen["registered"] == "Alice"
    # Search, open the direct conversation; bob's page is connected, so he is online.
    assert seen["alice header"] == {"title": "Bob", "status": "online", "dotOnline": True}
    # Optimistic send: shown as pending before the ack, then sent; the text stays text.
    assert seen["status right after sending"] == "pending"
    assert seen["alice sent"] == {"text": HELLO, "injectedElements": 0, "composer": ""}
    # Live on bob's side, with an unread badge (and in the tab title).
    assert seen["bob unread"] == {
        "badge": "1",
        "preview": HELLO,
        "online": 1,
        "title": "(1) chatcore",
    }
    # Bob opened it: alice's message shows as read.
    assert seen["alice sees read"].endswith(" · read")
    assert seen["alice typing indicator"] == "Bob is typing…"
    # Bob's reply arrived live; the indicator went away; alice's open page read it.
    assert seen["alice received"] == {
        "bodies": [HELLO, "Hi Alice"],
        "typing": "",
        "unreadBadges": 0,
        "announced": "Bob: Hi Alice",  # for screen readers
    }
    assert seen["bob sees read"] == "read"
    # Missed while disconnected, caught up by sync after the automatic reconnection.
    assert seen["bob caught up"] == [HELLO, "Hi Alice", "sent while you were away"]
    assert seen["group"] == {"aliceStatus": "2 members", "bobList": ["Team <3", "Alice"]}
    # Most recent activity first.
    assert seen["group unread live"] == ["Team <3", "Bob"]
    assert seen["tokens renewed"] == {
        "refreshRotated": True,
        "accessReplaced": True,
        "me": "Alice",
        "conversations": ["Team <3", "Bob"],
    }
    # The socket ended with its token: the page renewed the token and reconnected.
    assert seen["socket renewed"] == {"connection": "Online", "received": "still here?"}
    assert seen["history"] == {
        "firstPage": 50,
        "olderVisible": True,
        "afterLoad": 60,
        "olderStillVisible": False,
        "firstBody": "group message 1",
        "sender": "Bob",
    }
    # Message search: conversation, sender, time, the matched word marked (as text).
    assert seen["search hello"] == {
        "count": 1,
        "conversation": "Bob",
        "sender": "Alice",
        "time": True,
        "marks": ["Hello"],
        "injectedElements": 0,
    }
    # "messa 5": messages 59..50, then 5, newest first; both words marked.
    assert seen["search group"]["bodies"] == [
        *(f"group message {n}" for n in range(59, 49, -1)),
        "group message 5",
    ]
    assert seen["search group"]["marks"] == ["message", "5"]
    # Opened at the message (in view, with older ones loadable and the newest below it).
    assert seen["search opened"] == {
        "title": "Team <3",
        "hit": "group message 5",
        "seq": "5",
        "olderVisible": False,
        "newest": "group message 60",
    }
    assert seen["narrow"] == {"sidebarVisible": False, "conversationVisible": True}
    assert seen["narrow back"] == {"sidebarVisible": True}
    # Live edits and deletions (made by other clients of theirs).
    assert seen["edited and deleted"]["bodies"] == [HELLO, "Hi Alice, edited", "Message deleted"]
    assert seen["edited and deleted"]["editedMeta"].endswith(" · edited")
    # v1.1: "@b" offers bob, Enter completes it; bob's list shows the mention badge, his
    # page highlights the mention; reactions toggle from the picker and the chips; a reply
    # in the thread panel shows as "1 reply" live on alice's page (not in the timeline).
    assert seen["mention"] == {
        "options": ["@bob Bob"],
        "completed": "Look @bob ",
        "badge": "@1",
        "label": "Team <3, 1 unread, 1 unread mentions",
    }
    assert seen["mention seen"] == {
        "body": "Look @bob what do you think?",
        "highlighted": "@bob",
    }
    assert seen["reactions"] == {"alice": ["🎉 2"], "bobPressed": "true"}
    assert seen["reaction removed"] == ["🎉 1"]
    assert seen["thread"] == {
        "aliceRoot": "Look @bob what do you think?",
        "aliceReplies": ["I like it"],
        "aliceCount": "1 reply",
        "bobCount": "1 reply",
        "inTimeline": 0,
    }
    # Reconnected after alice edited, reacted and replied: bob's page read again what it
    # showed (sync alone brings only the reply).
    assert seen["refreshed after reconnecting"] == {
        "body": "Look @bob what do you think now?",
        "edited": True,
        "chips": ["🎉 1", "👍 1"],
        "replies": "2 replies",
        "panelRoot": "Look @bob what do you think now?",
        "panelCount": "2 replies",
        "panelReplies": ["I like it", "Me too"],
    }
    # Logging out revokes the refresh token and forgets the session and what it showed.
    assert seen["logged out"] == {"status": 204, "session": None, "listEmptied": 0}

    # The only errors in the consoles: the refused login's and the refused access token's
    # 401s, and the reconnection attempts of bob's offline browser.
    expected = {
        REFUSED_STEP: "status of 401",
        TOKEN_STEP: "status of 401",
        OFFLINE_STEP: "net::ERR_INTERNET_DISCONNECTED",
        REFRESH_STEP: "net::ERR_INTERNET_DISCONNECTED",
    }
    console = [line for line in lines if line["type"] == "console"]
    unexpected = [c for c in console if expected.get(c["step"], "\0") not in c["text"]]
    assert not unexpected, unexpected

    screenshots = {
        line["name"]: Path(line["path"]) for line in lines if line["type"] == "screenshot"
    }
    assert set(screenshots) == {
        "bob-unread",
        "alice-typing",
        "alice-group",
        "bob-direct",
        "alice-narrow",
        "alice-search",
        "alice-search-opened",
        "bob-logged-out",
        "bob-mention-badge",
        "alice-thread",
        "bob-thread",
        "bob-refreshed",
    }
    for path in screenshots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    print("screenshots:", *sorted(map(str, screenshots.values())), sep="\n  ")
