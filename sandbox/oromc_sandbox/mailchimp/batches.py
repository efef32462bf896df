"""`/batches` (filled in below)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def batch_routes() -> list[BaseRoute]:
    return []
