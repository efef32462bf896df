"""The `sandbox` command: serve the two emulated APIs, or print their URLs and credentials."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import click

from oromc_sandbox.core.state import CONSENT_SOURCES, FAULT_KINDS, SandboxOptions

DEFAULTS = SandboxOptions()
F = TypeVar("F", bound=Callable[..., Any])


def _csv(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _options(**kwargs: Any) -> SandboxOptions:
    kinds = _csv(str(kwargs.pop("fault_kinds"))) or []
    epoch = kwargs.pop("epoch")
    return SandboxOptions(
        fault_kinds=kinds,
        fault_routes=_csv(kwargs.pop("fault_routes", None)),
        fault_methods=_csv(kwargs.pop("fault_methods", None)),
        epoch=datetime.fromisoformat(epoch) if epoch else None,
        **kwargs,
    )


def _default(flag: str, text: str, **extra: Any) -> Callable[[F], F]:
    """``--flag`` (help ``text``) defaulting to the :class:`SandboxOptions` field of the same name."""
    default = getattr(DEFAULTS, flag.removeprefix("--").replace("-", "_"))
    return click.option(flag, default=default, show_default=True, help=text, **extra)


def _switch(name: str, default: bool, text: str) -> Callable[[F], F]:
    """An on/off ``--name/--no-name`` flag (help ``text``)."""
    return click.option(f"--{name}/--no-{name}", default=default, show_default=True, help=text)


def _stack(flags: list[Callable[[F], F]]) -> Callable[[F], F]:
    """The flags as one decorator, listed in the order ``--help`` shows them."""

    def apply(func: F) -> F:
        for flag in reversed(flags):
            func = flag(func)
        return func

    return apply


# Flags shared by `serve` and `info` (they decide URLs, credentials and data).
common_options = _stack([
    _default("--seed", "Seed of the generated data."),
    _default(
        "--customers",
        "Number of Oro customers (accounts) to seed; users, orders and the audience scale with it.",
    ),
    _default(
        "--max-audience-members",
        "At most this many seeded audience members (a uniform sample of the shop's customer "
        "users beyond it, plus Mailchimp-only members); memory grows with it (see the README).",
        type=click.IntRange(min=5),
    ),
    _default("--host", "Interface to bind."),
    _default("--oro-port", "OroCommerce API port (0 = any free port)."),
    _default("--mailchimp-port", "Mailchimp API port (0 = any free port)."),
    _default("--mailchimp-dc", "Data center this Mailchimp emulates (API keys end in -<dc>)."),
    click.option("--tls-cert", default=None, help="Serve HTTPS with this certificate (PEM)."),
    click.option("--tls-key", default=None, help="Private key (PEM) for --tls-cert."),
])

# The Oro instance `serve` emulates: its customizations and settings.
oro_options = _stack([
    _default("--token-ttl", "Oro access token lifetime (s)."),
    _switch(
        "customeruser-updatedat-filter",
        False,
        "Simulate an Oro instance customized to filter/sort customer users by updatedAt.",
    ),
    _switch("tagging", True, "Tagging enabled for customer users in Oro."),
    _switch(
        "shoppinglists",
        False,
        "Expose shoppinglists in the Oro back-office API (a common customization).",
    ),
    _switch(
        "order-campaign-relation",
        False,
        "Oro orders carry a custom many-to-one 'campaign' relation (added in Entity Management).",
    ),
    _switch(
        "campaign-statistics-fields",
        False,
        "Oro campaigns carry custom fields mc_emails_sent, mc_opens, ... mc_revenue (added in Entity "
        "Management) holding the Mailchimp report's figures.",
    ),
    _switch(
        "order-external-status-management",
        False,
        "Oro's 'Enable External Status Management' order setting: the order 'status' is writable.",
    ),
    _switch(
        "marketingactivities-batch",
        False,
        "An api.yml customization enabling the Batch API (update_list) for marketingactivities "
        "(stock Oro: 405).",
    ),
    _default(
        "--batch-sync-wait-timeout",
        "Oro Batch API: seconds an X-Mode: sync request waits before it answers 202 (async).",
    ),
    _default(
        "--batch-queue-delay",
        "Oro Batch API: seconds before the message queue starts processing a batch operation.",
    ),
    _default(
        "--consent-source",
        "Where Oro keeps marketing consent: none (stock), customer_user_field (a boolean custom "
        "field 'marketing_consent' on customer users) or consent_acceptances (OroConsentBundle "
        "acceptances exposed by an api.yml customization).",
        type=click.Choice(list(CONSENT_SOURCES)),
    ),
])

# Latency, faults and capacity of `serve`.
fault_options = _stack([
    click.option(
        "--latency",
        type=click.Choice(["none", "realistic"]),
        default="none",
        show_default=True,
        help="Add the documented per-endpoint latency profile.",
    ),
    click.option(
        "--fault-rate", default=0.0, show_default=True, help="Fraction of API requests that fail (0..1)."
    ),
    click.option(
        "--fault-kinds",
        default=",".join(DEFAULTS.fault_kinds),
        show_default=True,
        help=f"Comma-separated fault kinds from: {', '.join(FAULT_KINDS)}.",
    ),
    _default("--fault-seed", "Seed of the fault sequence."),
    _default("--slow-seconds", "Delay of a 'slow' fault."),
    click.option(
        "--fault-routes",
        default=None,
        help="Comma-separated routes the faults strike, as 'METHOD /template' or '/template' "
        "(e.g. 'POST /3.0/lists/{list_id}'); default: every route.",
    ),
    click.option(
        "--fault-methods",
        default=None,
        help="Comma-separated HTTP methods the faults strike (e.g. POST,PUT,PATCH,DELETE); default: all.",
    ),
    _default(
        "--oro-workers",
        "Oro requests processed at once, like PHP-FPM's pm.max_children (0 = unlimited); "
        "more wait in a queue.",
    ),
    _default("--oro-backlog", "Oro requests that may wait for a worker; beyond it they get 503."),
    _default(
        "--max-connections",
        "Mailchimp simultaneous connections allowed per API key (the next one gets 429).",
    ),
])


@click.group()
def main() -> None:
    """Local servers that behave like the OroCommerce back-office API and the Mailchimp Marketing API."""


@main.command()
@common_options
@oro_options
@fault_options
@click.option(
    "--epoch", default=None, help="Start the sandbox clock at this ISO time (default: now)."
)
@click.option("--data-dir", default=None, help="Persist data in SQLite here; a restart reloads it.")
@click.option(
    "--ready-file", default=None, help="Write URLs and credentials as JSON here once serving."
)
@click.option("--log-level", default="warning", show_default=True, help="Server log level.")
def serve(ready_file: str | None, log_level: str, **kwargs: Any) -> None:
    """Serve both APIs until Ctrl-C / SIGTERM."""
    from oromc_sandbox.core.server import run, write_ready_file
    from oromc_sandbox.core.stores import new_state

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s sandbox %(message)s", stream=sys.stderr
    )
    options = _options(**kwargs)
    try:
        state = new_state(options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    def ready(info: dict[str, Any]) -> None:
        if ready_file:
            write_ready_file(ready_file, info)
        _print_banner(info)

    run(state, on_ready=ready, log_level=log_level)


def _print_banner(info: dict[str, Any]) -> None:
    oro, mc = info["oro"], info["mailchimp"]
    lines = [
        "Sandbox is serving (Ctrl-C to stop)",
        f"  OroCommerce  {oro['api_url']}   token: POST {oro['token_url']}",
        f"               client_id={oro.get('client_id')} client_secret={oro.get('client_secret')}",
        f"  Mailchimp    {mc['api_url']}   api_key={mc.get('api_key')} list_id={mc.get('list_id')}",
        f"  Control      {info['control']['oro']}  {info['control']['mailchimp']}",
    ]
    click.echo("\n".join(lines))
    sys.stdout.flush()


@main.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
def info(as_json: bool, **kwargs: Any) -> None:
    """Print the base URLs and default credentials without starting anything."""
    from oromc_sandbox.core.server import describe
    from oromc_sandbox.core.stores import new_state

    options = replace(
        _options(fault_kinds="429", epoch=None, **kwargs), customers=min(kwargs["customers"], 5)
    )
    state = new_state(options)
    data = describe(state, options.oro_port, options.mailchimp_port)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _print_banner(data)


if __name__ == "__main__":
    main()
