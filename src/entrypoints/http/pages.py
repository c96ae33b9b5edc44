"""The server's own pages: the bundled web chat (static files) and the API docs page."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Final

from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

# The web chat: index.html, chat.css, chat.js and the vendored Socket.IO client. Shipped
# inside the package (the wheel includes every file under src/entrypoints).
STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
STATIC_PREFIX: Final = "/static"

# Browsers refuse to run a module script served with a non-JavaScript type, and a
# host's MIME table (mimetypes reads /etc/mime.types, the Windows registry) may say
# otherwise: the types of our own files are fixed here.
_MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/markdown; charset=utf-8",
}

# The chat page loads only its own files and talks only to its own origin (in CSP 3,
# 'self' also covers ws:/wss: to the same host). No inline script or style anywhere.
INDEX_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@functools.cache
def index_html() -> str:
    """The web chat page (read once)."""
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


class _ChatStaticFiles(StaticFiles):
    """The web chat's files, with fixed types and ``Cache-Control: no-cache``: the names
    carry no version, so browsers must revalidate (a cheap 304) to see a new release."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = _MEDIA_TYPES.get(Path(full_path).suffix)
        if media_type is not None:
            response.headers["Content-Type"] = media_type
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def static_mount() -> Mount:
    """``/static/...``: the web chat's files (404 in the error envelope for anything else)."""
    return Mount(STATIC_PREFIX, app=_ChatStaticFiles(directory=STATIC_DIR), name="static")


# Swagger UI from the swagger-ui-py package's static files: works offline, no CDN.
DOCS_HTML: Final = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>chatcore API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/docs-init.js"></script>
</body>
</html>
"""

# Served as a file rather than inline, so a strict Content-Security-Policy can be added.
DOCS_INIT_JS: Final = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
});
"""
