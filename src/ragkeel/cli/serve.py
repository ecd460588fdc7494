"""``ragkeel serve [--host 127.0.0.1] [--port 8000]``: the HTTP API under uvicorn until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.settings import load_settings


def serve_command(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port")] = 8000,
) -> None:
    """Serve the HTTP API: /v1/query, OpenAI-compatible /v1/chat/completions, /v1/search,
    /v1/documents, /healthz, /readyz, /docs."""
    container = Container(load_settings())
    app = create_app(container, preload_model=True)
    base = f"http://{host}:{port}"
    typer.echo(
        f"ragkeel API on {base} (OpenAPI: {base}/docs)\n"
        f"  curl -s {base}/v1/query -H 'content-type: application/json' "
        """-d '{"question": "How do I rotate an API key?"}'\n"""
        f'  OpenAI(base_url="{base}/v1", api_key="unused").chat.completions.create('
        'model="ragkeel", messages=[{"role": "user", "content": "..."}])',
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10)
