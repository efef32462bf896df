"""No echo loop: what one pipeline writes does not come back as work for the other, forever."""

from __future__ import annotations

from e2e_harness import Project
from pipelines import write_counts


def test_after_one_full_cycle_further_cycles_write_nothing(project: Project) -> None:
    """A fresh sandbox: one full cycle, then a second and a third write nothing on either side."""
    project.sandbox.advance_clock(30 * 86400)  # all seeded engagement has arrived
    project.run("audience-sync")
    project.run("engagement-sync")
    for cycle in (2, 3):
        project.sandbox.reset_stats()
        audience = project.run("audience-sync")
        engagement = project.run("engagement-sync")
        oro_writes = write_counts(project.sandbox.stats("oro"))
        mc_writes = write_counts(project.sandbox.stats("mailchimp"))
        assert (oro_writes, mc_writes) == (0, 0), (
            f"cycle {cycle} wrote Oro={oro_writes} Mailchimp={mc_writes}; "
            f"target-mailchimp {audience.summaries.get('target-mailchimp', {}).get('streams')}; "
            f"target-orocommerce {engagement.summaries.get('target-orocommerce', {}).get('streams')}"
        )
