"""Run both APIs in one process: two uvicorn servers on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from typing_extensions import override

from oromc_sandbox import mailchimp, oro
from oromc_sandbox.core.app import build_apps
from oromc_sandbox.core.middleware import InjectedResetError
from oromc_sandbox.core.state import SandboxOptions, SandboxState
from oromc_sandbox.core.stores import save_state

log = logging.getLogger("sandbox")


class _DropInjectedResets(logging.Filter):
    """Injected connection resets are intended; keep them out of the error log."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedResetError)


logging.getLogger("uvicorn.error").addFilter(_DropInjectedResets())


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (two servers share one loop)."""

    @override
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def base_urls(options: SandboxOptions, oro_port: int, mailchimp_port: int) -> dict[str, str]:
    """Base URLs of both APIs for the given ports."""
    scheme = "https" if options.tls_cert else "http"
    host = options.host if ":" not in options.host else f"[{options.host}]"
    return {
        "oro": f"{scheme}://{host}:{oro_port}",
        "mailchimp": f"{scheme}://{host}:{mailchimp_port}",
    }


def describe(state: SandboxState, oro_port: int, mailchimp_port: int) -> dict[str, Any]:
    """The sandbox's URLs and credentials (what `sandbox info --json` prints)."""
    urls = base_urls(state.options, oro_port, mailchimp_port)
    return {
        "oro": {
            "base_url": urls["oro"],
            "api_prefix": "/admin/api",
            "api_url": urls["oro"] + "/admin/api",
            "token_url": urls["oro"] + "/oauth2-token",
            **oro.sandbox_info(state.oro),
        },
        "mailchimp": {
            "base_url": urls["mailchimp"],
            "api_url": urls["mailchimp"] + "/3.0",
            **mailchimp.sandbox_info(state.mailchimp),
        },
        "control": {
            "oro": urls["oro"] + "/_sandbox/",
            "mailchimp": urls["mailchimp"] + "/_sandbox/",
        },
    }


async def serve(
    state: SandboxState,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve until SIGINT/SIGTERM; then save to ``--data-dir`` if one is set."""
    options = state.options
    apps = build_apps(state)
    servers = []
    for api, port in (("oro", options.oro_port), ("mailchimp", options.mailchimp_port)):
        config = uvicorn.Config(
            apps[api],
            host=options.host,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            ssl_certfile=options.tls_cert,
            ssl_keyfile=options.tls_key,
            timeout_keep_alive=75,
            # with TLS, a connection a client left open holds SIGTERM up for 30 s (the TLS
            # shutdown timeout of the event loop): bound the graceful shutdown instead
            timeout_graceful_shutdown=3 if options.tls_cert else None,
            backlog=2048,
            server_header=False,
            date_header=False,  # the middleware sends the sandbox clock's Date
        )
        servers.append(_QuietServer(config))

    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, stop)  # only possible in the main thread

    tasks = [asyncio.create_task(server.serve()) for server in servers]
    while not all(server.started for server in servers):
        done = [t for t in tasks if t.done()]
        if done:
            stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()
            msg = "a sandbox server failed to start (port in use?)"
            raise RuntimeError(msg)
        await asyncio.sleep(0.02)
    ports = [server.servers[0].sockets[0].getsockname()[1] for server in servers]
    if on_ready is not None:
        on_ready(describe(state, ports[0], ports[1]))
    await asyncio.gather(*tasks)
    saved = save_state(state)
    if saved:
        log.warning("sandbox data saved to %s", saved)


def run(
    state: SandboxState,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Blocking entry point (uses uvloop when installed)."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(state, on_ready, log_level))


def write_ready_file(path: str, info: dict[str, Any]) -> None:
    """Atomically write the ready file the test helper waits for."""
    target = Path(path)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(target)
