"""The SDK's standard target tests, against the sandbox's Oro.

Their fixture streams (``test_*``, ``camelcase``, ...) are not tap-mailchimp-engagement's, so the target must
read them cleanly (including the SDK's own error cases: record before schema, missing key property, invalid
schema), count them as ignored (``ignored_no_oro_destination``) and write nothing to Oro (checked after
each test).

All of the SDK's ``target_tests`` suite runs. The SDK leaves ``TargetMultipleStateMessages`` out of that
suite itself (commented out in singer_sdk/testing/suites.py, 0.54); it could not apply here either: it
expects STATE relayed only at the SDK's drain points, while this target (``state_after_each_state_message``,
default on) writes the records before each STATE and then relays that STATE, so it emits six states where
the test expects three, and the test compares parsed states with JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oromc_sandbox.testing import RunningSandbox
from singer_sdk.testing import get_target_test_class
from singer_sdk.testing.runners import TargetTestRunner
from target_orocommerce.target import TargetOroCommerce

# The factory needs a config when the module is imported; the sandbox's address is known only once its
# fixture runs, so the ``runner`` fixture below builds the real one.
_StandardTests = get_target_test_class(TargetOroCommerce, config={})


class TestTargetOroCommerceStandard(_StandardTests):
    """Every standard target test, each run with a fresh target against a re-seeded sandbox."""

    @pytest.fixture
    def runner(self, sb: RunningSandbox, tmp_path: Path) -> Iterator[TargetTestRunner]:
        oro = sb.info["oro"]
        config = {
            "base_url": sb.oro_base_url,
            "client_id": oro["client_id"],
            "client_secret": oro["client_secret"],
            "rejects_path": str(tmp_path / "rejects.jsonl"),
            "max_tries": 2,
        }
        # parse_env_config=False: a TARGET_OROCOMMERCE_* variable in the developer's shell must not
        # change what the test runs against.
        yield TargetTestRunner(target_class=TargetOroCommerce, config=config, parse_env_config=False)
        assert sb.stats("oro")["writes"] == 0  # no fixture stream has an Oro destination
