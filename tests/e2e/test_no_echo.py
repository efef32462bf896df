"""No echo loop, and consent travelling each way: the rounds of `make demo` on a small sandbox.

scripts/demo.py's rounds run here as they do in `make demo`: a full cycle; a second that writes
nothing; an opt-out made in OroCommerce and an unsubscribe made in Mailchimp, each of which must
reach the other system; and a fourth cycle that writes nothing on either side (the opt-outs do not
come back as work).
"""

from __future__ import annotations

import demo
from e2e_harness import Project


def test_demo_rounds_carry_an_opt_out_each_way_and_then_write_nothing(project: Project) -> None:
    project.sandbox.advance_clock(30 * 86400)  # all seeded engagement has arrived
    played = demo.play(project.sandbox, project.env)

    assert played.returncode == 0
    outcomes = [o.line() for o in played.opt_outs]
    assert [o.where for o in played.opt_outs] == ["OroCommerce", "Mailchimp"], outcomes
    assert all(o.reached for o in played.opt_outs), outcomes
    assert played.ok
    in_oro, in_mailchimp = played.opt_outs
    assert (in_oro.now, in_mailchimp.now) == ("unsubscribed", "false")
    assert played.writes[3]["audience-sync"] >= 1, "the Oro opt-out was written to Mailchimp"
    assert played.writes[3]["engagement-sync"] >= 1, "the Mailchimp unsubscribe was written to Oro"
    quiet = {"audience-sync": 0, "engagement-sync": 0}
    assert played.writes[2] == quiet, f"cycle 2 wrote {played.writes[2]}"
    assert played.writes[4] == quiet, f"cycle 4 (after the opt-outs) wrote {played.writes[4]}"
