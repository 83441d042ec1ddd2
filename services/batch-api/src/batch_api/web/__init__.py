"""The web dashboard, served by batch-api at `/`.

How it is built, and why:

- The server renders each page's frame with Jinja2 (layout, navigation, headings, forms, the
  choices the contracts define such as states and priorities). It holds no per-user data: the
  API authenticates every call with an API key and has no cookie session, so a server-rendered
  page could only show a tenant's batches by storing a key server-side.
- The browser fills the frame by calling the same JSON API as every other client (`/v1/...`),
  with the key the user signed in with kept in `sessionStorage` (gone when the tab closes; never
  a cookie, so no cross-site request can use it). Live progress comes from the API's
  server-sent event streams, read with `fetch` because `EventSource` cannot send the key.
- No front-end build step and no third-party front-end code: plain ES modules and one CSS file
  under `static/`, served from this package.
- `GET /ui/session` tells the page who the key belongs to (tenant, user, role), so actions a
  viewer may not take are not offered. The API still enforces roles on every call.

Everything here is registered by `install_dashboard(app)`.
"""

from __future__ import annotations

from batch_api.web.routes import install_dashboard

__all__ = ["install_dashboard"]
