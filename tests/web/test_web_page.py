"""The bundled web chat over plain HTTP: ``GET /`` and its static files (real server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from entrypoints.http.pages import STATIC_DIR
from realtime.livechat import LiveChat

JS_DIR = Path(__file__).resolve().parent.parent / "js"

# What the page loads, and the type each must be served with (a module script with a
# non-JavaScript type is refused by browsers).
ASSETS = {
    "/static/favicon.svg": "image/svg+xml",
    "/static/chat.css": "text/css; charset=utf-8",
    "/static/vendor/socket.io.min.js": "text/javascript; charset=utf-8",
    "/static/chat.js": "text/javascript; charset=utf-8",
    "/static/search.js": "text/javascript; charset=utf-8",
    "/static/search.css": "text/css; charset=utf-8",
}


async def test_home_page_is_the_web_chat(live: LiveChat) -> None:
    page = await live.http.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text == (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self';" in csp  # no inline scripts, no other origin
    assert page.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="/static/chat.js">' in page.text
    assert 'id="auth-form"' in page.text
    assert 'id="conversation-list"' in page.text
    assert set(re.findall(r'(?:src|href)="([^"]+)"', page.text)) == set(ASSETS)


@pytest.mark.parametrize(("path", "content_type"), ASSETS.items())
async def test_static_files_are_served_with_their_types(
    live: LiveChat, path: str, content_type: str
) -> None:
    response = await live.http.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    # Unversioned names: browsers must revalidate, which costs a 304 when nothing changed.
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == (STATIC_DIR / path.removeprefix("/static/")).read_bytes()
    again = await live.http.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert not again.content


@pytest.mark.parametrize(
    "path", ["/static/nothing.js", "/static/..%2Fpages.py", "/static/%2E%2E/pages.py", "/static/"]
)
async def test_static_serves_only_its_own_folder(live: LiveChat, path: str) -> None:
    response = await live.http.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def _pinned_socketio_version() -> str:
    package = json.loads((JS_DIR / "package.json").read_text(encoding="utf-8"))
    version: str = package["dependencies"]["socket.io-client"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"pin an exact version, not {version}"
    return version


def test_vendored_socketio_client_is_the_pinned_version_with_its_license() -> None:
    version = _pinned_socketio_version()
    vendored = (STATIC_DIR / "vendor" / "socket.io.min.js").read_text(encoding="utf-8")
    notice = (STATIC_DIR / "vendor" / "NOTICE.md").read_text(encoding="utf-8")

    assert vendored.startswith(f"/*!\n * Socket.IO v{version}\n")
    assert "Released under the MIT License." in vendored[:200]
    assert f"**{version}**" in notice
    assert "The MIT License (MIT)" in notice


@pytest.mark.skipif(
    not (JS_DIR / "node_modules" / "socket.io-client").is_dir(),
    reason="socket.io-client is not installed: run `cd tests/js && npm ci`",
)
def test_vendored_socketio_client_is_byte_for_byte_the_npm_one() -> None:
    installed = JS_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
    vendored = STATIC_DIR / "vendor" / "socket.io.min.js"
    assert vendored.read_bytes() == installed.read_bytes(), (
        "copy tests/js/node_modules/socket.io-client/dist/socket.io.min.js into "
        "src/entrypoints/http/static/vendor/ (and update NOTICE.md)"
    )


@pytest.mark.parametrize("script", ["chat.js", "search.js"])
def test_the_page_scripts_never_parse_html(script: str) -> None:
    # User text reaches the DOM as text nodes only; these would parse strings as markup.
    source = (STATIC_DIR / script).read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink


async def test_the_v11_module_chat_js_imports_is_served_as_javascript(live: LiveChat) -> None:
    chat_js = (STATIC_DIR / "chat.js").read_text(encoding="utf-8")
    assert 'from "./social.js"' in chat_js

    response = await live.http.get("/static/social.js")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
