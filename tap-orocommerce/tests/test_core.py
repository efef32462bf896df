"""The SDK's standard tap tests, against a sandbox started for this module."""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from typing import Any

import pytest
from oromc_sandbox.testing import running_sandbox
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_orocommerce.tap import TapOroCommerce

from tests.helpers import tap_config

# The factory needs the config when the class is built (collection time), so the sandbox is
# started here and stopped by the module fixture below (atexit as a safety net).
# shopping lists on and 20 customers: every stream (incl. shopping_lists, ecommerce_carts) has records
_SANDBOX_CM = running_sandbox(customers=20, shoppinglists=True)
_SANDBOX = _SANDBOX_CM.__enter__()
atexit.register(_SANDBOX.stop)

_BaseTests = get_tap_test_class(
    TapOroCommerce,
    config=tap_config(_SANDBOX, page_size=25, state_every_records=1000),
    suite_config=SuiteConfig(),
)


class TestTapOroCommerce(_BaseTests):  # type: ignore[misc,valid-type]
    """Standard tests (discovery, sync, schema conformance, primary keys, attribute types)."""


@pytest.fixture(scope="module", autouse=True)
def _stop_sandbox() -> Iterator[Any]:
    yield _SANDBOX
    _SANDBOX_CM.__exit__(None, None, None)
