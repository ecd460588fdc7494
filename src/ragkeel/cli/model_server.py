"""``ragkeel model-server [--host 127.0.0.1] [--port 8090]``: the local GGUF chat model, loaded
once, as an OpenAI-compatible server for every replica and worker to share (issue 13).

Without it each ``ragkeel serve`` process (each of ``--workers N``, each replica) loads its own
copy of the model: ~0.9 GB of memory apiece beyond the shared file (docs/benchmarks.md,
"Issue 13"). With it, run the model once and set
``generation.local.base_url`` (``RAGKEEL_GENERATION__LOCAL__BASE_URL=http://127.0.0.1:8090/v1``)
on every replica: the container then reaches the model through the gateway as the deployment
``local`` (retries, breaker, timeouts, metering at zero cost; ``container.served_local_model``)
and never loads a copy itself.

The server is llama-cpp-python's own (``python -m llama_cpp.server``; the ``model-server``
extra adds the two packages it needs beyond ours, ``sse-starlette`` and ``starlette-context``),
started on the same file the in-process model uses, checked the same way before the server
starts (``Container.local_gguf``: the pinned model by its sha256, or your own
``generation.local.model_path``, by its pin when set) with the same ``generation.local``
settings (the model's name is the alias it answers to — the file stem of a ``model_path`` —,
``n_ctx``, ``threads``).
This command replaces itself with the server (``exec``): its PID is the server's, SIGTERM
stops it. llama.cpp generates one answer at a time; the others wait in its queue (bounded by
each replica's ``model_timeout_s``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.identity.edge import is_loopback
from ragkeel.models.gguf import verify_file

DEFAULT_PORT = 8090
SERVER_NEEDS = ("llama_cpp", "sse_starlette", "starlette_context")  # llama_cpp.server's imports
EXTRA_HINT = (
    "pip install 'ragkeel[local,model-server]' (llama-cpp-python comes from the wheel "
    "`make setup` builds)"
)


def server_argv(
    model_file: Path, name: str, host: str, port: int, *, n_ctx: int, threads: int
) -> list[str]:
    """The llama-cpp-python server's command line for ``model_file`` answering as ``name``."""
    argv = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_file),
        "--model_alias",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--verbose",
        "False",
    ]
    if threads:  # 0: llama.cpp's default
        argv += ["--n_threads", str(threads)]
    return argv


def missing_server_packages() -> list[str]:
    return [m for m in SERVER_NEEDS if importlib.util.find_spec(m) is None]


def model_server_command(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port")] = DEFAULT_PORT,
) -> None:
    """Serve the local chat model once, OpenAI-compatible, for every replica to share
    (generation.local.base_url)."""
    with Container.load() as container:
        local, gguf = container.local_model_settings, container.local_gguf()
    path = verify_file(gguf)  # the pinned sha256, or ModelError saying what to do
    missing = missing_server_packages()
    if missing:
        raise ConfigError(
            f"the model server needs {', '.join(missing)}, which is not installed",
            hint=EXTRA_HINT,
        )
    base = f"http://{host}:{port}/v1"
    if not is_loopback(host):
        typer.secho(
            f"WARNING: the model server has no API key and listens on {host}: anyone who can "
            "reach the port can use the model.",
            err=True,
            fg="red",
        )
    typer.echo(
        f"{gguf.display} on {base} (model {gguf.name!r})\n"
        f"  every replica: RAGKEEL_GENERATION__LOCAL__BASE_URL={base}",
        err=True,
    )
    argv = server_argv(path, gguf.name, host, port, n_ctx=local.n_ctx, threads=local.threads)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
