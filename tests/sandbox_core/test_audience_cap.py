"""`--max-audience-members`: the seeded Mailchimp audience never exceeds the cap (a sample of Oro's users)."""

from __future__ import annotations

from click.testing import CliRunner
from oromc_sandbox.cli import main
from oromc_sandbox.core.state import SandboxOptions
from oromc_sandbox.core.stores import new_state


def _audience(customers: int, cap: int) -> tuple[set[str], set[str]]:
    """(member addresses, Oro customer-user addresses) of a freshly seeded sandbox."""
    state = new_state(SandboxOptions(customers=customers, max_audience_members=cap))
    (members,) = state.mailchimp.members.values()
    table = state.oro.tables["customerusers"]
    rows = (table.get(rid) for rid in table.ids())
    oro = {str(row.get("attributes", row)["email"]).lower() for row in rows}
    emails = {str(m["email_address"]).lower() for m in members.values()}
    return emails, oro


def test_cap_bounds_the_audience_to_a_sample_of_oro_users() -> None:
    capped, oro = _audience(30, 12)
    assert len(capped) == 12
    # the sample is of the shop's people: no Mailchimp-only member past the cap
    assert capped <= oro


def test_default_cap_keeps_a_small_shops_whole_audience() -> None:
    emails, oro = _audience(30, SandboxOptions().max_audience_members)
    assert SandboxOptions().max_audience_members == 250_000
    assert len(emails & oro) > 12
    assert emails - oro  # Mailchimp-only members as well


def test_cli_rejects_a_cap_below_five() -> None:
    result = CliRunner().invoke(main, ["info", "--max-audience-members", "4"])
    assert result.exit_code == 2
    assert "--max-audience-members" in result.output
