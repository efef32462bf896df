"""Shared fixtures: one sandbox per test module that needs it."""

from __future__ import annotations

import sys
from pathlib import Path

# make `tests.helpers` importable as a package relative to tap-orocommerce/
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
