"""``ragkeel serve [--host 127.0.0.1] [--port 8000] [--workers N] [--log-config PATH]``: the HTTP
API under uvicorn until Ctrl-C or SIGTERM.

Workers (``--workers``, ``server.workers``, default 1): with more than one, N processes serve
the one port, each with its own container; ``cli/serve_workers.py`` says what they share
(metrics, the monitor's alerts) and what they do not (the local model: ~0.9 GB each, unless
``ragkeel model-server`` serves it once).

Shutdown (SIGTERM or Ctrl-C): uvicorn stops listening; new answers on open connections are
refused at once (503 ``SHUTTING_DOWN``); running answers get ``server.drain_s`` to finish; any
still running then is ended with a terminal ``SHUTTING_DOWN`` error event (or a 503), even when
its provider call never returns; the process exits a few seconds later at most
(``FLUSH_S``: the terminal events go out, the store closes).

Keys (``api.auth``, ``identity/edge.py``): ``auto`` (the default) requires an API key when
``--host`` is anything but a loopback address and not on 127.0.0.1 / ::1 / localhost. ``serve``
says which on start; it warns when auth is off on a non-loopback address (anyone who can reach
the port can read, upload and delete), and when auth is required but no key is active yet.

Logs (``observability.log_format``, ``log_level``; ``observability/logs.py``): JSON lines on
stderr by default, each with the request's trace id, uvicorn's access log in the same format;
``text`` for a terminal. The start-up banner stays plain text.

``--log-config PATH`` (issue 15): a logging configuration handed to uvicorn as its own
``--log-config`` is (``.json``, ``.yaml``/``.yml``: ``logging.config.dictConfig``; anything else:
an ini file for ``fileConfig``), applied after ragkeel's handler above, in every worker too: it
adds handlers (an access log file, say) or changes levels; ragkeel's filters and formatters can
be named in it (``ragkeel.observability.logs.JsonLineFormatter``, ``RedactFilter``,
``ContextFilter``). A dictConfig without ``disable_existing_loggers: false`` silences the loggers
it does not name, ragkeel's own included (``logging``'s default). A file that cannot be applied
stops ``serve`` with ``CONFIG_INVALID``."""

from __future__ import annotations

import configparser
import math
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn
import yaml

from ragkeel.api import create_app
from ragkeel.api.state import ApiState
from ragkeel.cli.serve_workers import WorkerApp, run_workers
from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.identity.edge import is_loopback
from ragkeel.observability.logs import configure_logging

FLUSH_S = 3.0  # after the drain: time for the terminal events to be sent before tasks are cut
# with workers: how long uvicorn's supervisor waits for a worker's health answer before it kills
# it as hung; a worker answers only once its imports are done, which on a loaded 2-core machine
# took more than uvicorn's 5 s default (every worker was killed and respawned, forever)
WORKER_HEALTHCHECK_S = 60


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which on the first SIGTERM/SIGINT also starts the API's drain."""

    def __init__(self, config: uvicorn.Config, state: ApiState, drain_s: float) -> None:
        super().__init__(config)
        self._state = state
        self._drain_s = drain_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit and sig in (signal.SIGTERM, signal.SIGINT):
            self._state.drain(self._drain_s)
        super().handle_exit(sig, frame)


def serve_command(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, help="worker processes (server.workers)"),
    ] = None,
    log_config: Annotated[
        Path | None,
        typer.Option(
            "--log-config",
            exists=True,
            dir_okay=False,
            readable=True,
            help="logging config file for uvicorn (.json/.yaml: dictConfig, else .ini), "
            "applied in every worker after ragkeel's own handler",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API: /v1/query, OpenAI-compatible /v1/chat/completions, /v1/search,
    /v1/documents, /healthz, /readyz, /docs."""
    container = Container.load()  # the app's lifespan closes it
    # JSON (or text) lines with the trace id, uvicorn's access log included: uvicorn gets no
    # logging config of its own, its loggers propagate to this handler (observability/logs.py)
    configure_logging(container.log_format, level=container.log_level)
    n = workers or container.workers
    # with workers, this app only speaks the banner: each worker builds its own (WorkerApp)
    app = create_app(container, preload_model=n == 1, host=host, monitor=n == 1)
    drain_s = container.drain_s
    base = f"http://{host}:{port}"
    _say_auth(app.state.ragkeel, host)
    keyed = app.state.ragkeel.auth_required
    key_header = " -H 'authorization: Bearer $RAGKEEL_KEY'" if keyed else ""
    typer.echo(
        f"ragkeel API on {base}"
        + ("" if app.docs_url is None else f" (OpenAPI: {base}/docs)")
        + f"\n  curl -s {base}/v1/query{key_header} -H 'content-type: application/json' "
        """-d '{"question": "How do I rotate an API key?"}'\n"""
        f'  OpenAI(base_url="{base}/v1", api_key="{"<your key>" if keyed else "unused"}")'
        ".chat.completions.create("
        'model="ragkeel", messages=[{"role": "user", "content": "..."}])',
        err=True,
    )
    if n > 1:
        container.close()  # its lifespan never runs here
        typer.echo(f"{n} worker processes (server.workers)", err=True)
        run_workers(_config(WorkerApp(host), host, port, container, log_config, workers=n))
        return
    try:
        config = _config(app, host, port, container, log_config)
    except ConfigError:
        container.close()  # the app's lifespan, which would close it, never runs
        raise
    DrainingServer(config, app.state.ragkeel, drain_s).run()


def _config(
    app: object,
    host: str,
    port: int,
    container: Container,
    log_config: Path | None,
    *,
    workers: int = 1,
) -> uvicorn.Config:
    """uvicorn's config; it applies ``log_config`` at once (and again in each worker)."""
    try:
        return uvicorn.Config(
            app,  # type: ignore[arg-type]  # an ASGI app, or the WorkerApp factory
            host=host,
            port=port,
            log_config=None if log_config is None else str(log_config),
            log_level=container.log_level,
            timeout_graceful_shutdown=math.ceil(container.drain_s + FLUSH_S),
            workers=workers,
            factory=workers > 1,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        )
    except (ValueError, KeyError, TypeError, configparser.Error, yaml.YAMLError) as exc:
        # dictConfig's ValueError, fileConfig's KeyError/configparser errors, bad JSON/YAML
        raise ConfigError(f"--log-config {log_config}: cannot apply it: {exc}") from exc


def _say_auth(state: ApiState, host: str) -> None:
    if not state.auth_required:
        if not is_loopback(host):
            typer.secho(
                f"WARNING: api.auth is off on {host}, a non-loopback address: anyone who can "
                "reach this port can read, upload and delete documents. Set api.auth: required "
                "(RAGKEEL_API__AUTH=required) and create keys with `ragkeel keys create`.",
                err=True,
                fg="red",
            )
        return
    active = state.container.keys.count_active()
    typer.echo(f"API keys required (api.auth, {active} active key(s))", err=True)
    if active == 0:
        typer.secho(
            "WARNING: no active API key: every request but /healthz and /readyz will get 401. "
            "Create one: ragkeel keys create --tenant NAME --scope query",
            err=True,
            fg="yellow",
        )
