"""Account, lists, merge fields, members, tags, segments, webhooks (filled in below)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def audience_routes() -> list[BaseRoute]:
    return []
