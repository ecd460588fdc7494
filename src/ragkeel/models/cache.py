"""The user-level models directory: one place for the model files, shared by every home.

Model files are large (the default chat model is 1.1 GB) and identical for every index, so they
do not live under ``RAGKEEL_HOME``: an evaluation config or a test with a home of its own would
find no model there and answer every question extractively (``MODEL_MISSING``). They live in
one directory per user instead:

1. ``generation.local.models_dir`` if set (deprecated: it still wins, with a
   ``DeprecationWarning`` when the settings are loaded);
2. else ``models.dir`` (``RAGKEEL_MODELS__DIR``);
3. else ``default_models_dir()``: ``$XDG_CACHE_HOME/ragkeel/models``, or
   ``~/.cache/ragkeel/models`` when ``XDG_CACHE_HOME`` is unset or not absolute (the XDG base
   directory rule).

``Settings.models_dir`` applies that order; ``make setup`` (``ragkeel models install``) installs
there. What the directory holds::

    qwen2.5-coder-1.5b-instruct-q4_k_m.gguf   a local chat model (models/gguf.py)
    verified-gguf.json                        stamps of verified GGUF files (models/integrity.py)
    all-minilm-l6-v2/tokenizer.json           the ONNX embedder's tokenizer, extracted from its
    all-minilm-l6-v2/verified.json            pip package, and its stamps (models/embedder_files.py)

A model file may be a symlink: it is verified (and its stamp keyed) by the file it resolves to.
``ragkeel models install`` first adopts a model file an older version installed under
``<RAGKEEL_HOME>/models`` (``adopt_from_home``: a hard link, no download, no copy).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP_DIR = "ragkeel"
MODELS_SUBDIR = "models"


def default_models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/ragkeel/models``, else ``~/.cache/ragkeel/models`` (not created here)."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        base = Path(xdg)
    else:
        base = (Path(env["HOME"]) if env.get("HOME") else Path.home()) / ".cache"
    return base / APP_DIR / MODELS_SUBDIR


def adopt_from_home(models_dir: Path, home: Path, filename: str) -> Path | None:
    """Before issue 10 ``make setup`` put the model files under ``<RAGKEEL_HOME>/models``. If
    ``filename`` is there and not yet in ``models_dir``, hard-link it across (no copy of a 1 GB
    file, and the old path keeps working) and return the new path; else, or when the two are on
    different file systems, do nothing and return None. The caller verifies the file as usual
    (``gguf.assemble`` replaces a bad one, never writing through to the old path)."""
    old, new = home / "models" / filename, models_dir / filename
    if new.exists() or new.is_symlink() or not old.is_file():
        return None
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        os.link(old, new)
    except OSError:
        return None
    return new
