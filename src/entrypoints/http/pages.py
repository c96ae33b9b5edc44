"""Static HTML of the server: the home page placeholder and the API docs page."""

from __future__ import annotations

from typing import Final

INDEX_HTML: Final = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>chatcore</title>
  <style>
    body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 4rem auto;
           padding: 0 1rem; color: #222; }
    code { background: #f3f3f3; padding: 0 .25rem; border-radius: 3px; }
  </style>
</head>
<body>
  <h1>chatcore is running</h1>
  <p>The bundled web chat page will live here.</p>
  <ul>
    <li><a href="/docs">Interactive API docs</a> (<a href="/openapi.json">OpenAPI</a>)</li>
    <li>HTTP API under <code>/api</code>, Socket.IO at <code>/socket.io/</code></li>
    <li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>,
        <a href="/metrics">/metrics</a></li>
  </ul>
</body>
</html>
"""

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
