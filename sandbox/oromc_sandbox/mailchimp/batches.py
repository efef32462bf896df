"""`/batches`: asynchronous batch operations executed in-process against the same routes.

The queue and the runner (timeline, one batch at a time per account, paging of GET collections,
the results archive) are in `models/batches.py`; the handlers and `batch_routes()` in
`responses/batches.py`. This module keeps the names other code uses.
"""

from __future__ import annotations

from .models.batches import FINALIZING, PER_OPERATION, PHASES, STARTED_BASE
from .responses.batches import RESULTS_PATH, batch_routes

__all__ = ["FINALIZING", "PER_OPERATION", "PHASES", "RESULTS_PATH", "STARTED_BASE", "batch_routes"]
