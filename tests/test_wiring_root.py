"""The container is the only reader of ``Settings`` (issue 10, "one wiring root"), and it is a
context manager that closes what it built.

The reader check walks the source with ``ast``: a module outside ``READERS`` that imports
``Settings`` or ``load_settings`` (or the whole ``ragkeel.settings`` module), or that reaches
for a ``.settings`` attribute (``container.settings.x``), fails here with its name and line. A
lower layer may import its own *section* class (``GatewaySettings``, ``EmbeddingSettings``...):
the container passes it that section, never the whole settings.
"""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

import ragkeel
from ragkeel.container import Container
from ragkeel.settings import load_settings

SRC = Path(ragkeel.__file__).parent

# module -> why it may read the whole settings (docs/architecture.md, "Wiring root")
READERS = {
    "ragkeel.settings": "defines them",
    "ragkeel.container": "the wiring root",
    "ragkeel.cli.config": "`config show` prints the effective settings",
    "ragkeel.evaluation.run.config": "an eval config embeds the settings of its run",
    "ragkeel.evaluation.run.harness": "builds the run's container from them; pins their snapshot",
}
# packages with a `.settings` of their own, unrelated to ``Settings`` (the fault server's)
OWN_SETTINGS_ATTRIBUTE = ("ragkeel.testing",)


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _readings(name: str, path: Path) -> list[str]:
    """Where ``name`` reads the whole settings: ``line: what``."""
    found = []
    own_attribute = name.startswith(OWN_SETTINGS_ATTRIBUTE)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (what := _reading(node, own_attribute)) is not None:
            found.append(f"{getattr(node, 'lineno', '?')}: {what}")
    return found


def _reading(node: ast.AST, own_attribute: bool) -> str | None:
    """What ``node`` reads of the whole settings, if anything."""
    if isinstance(node, ast.ImportFrom) and node.module == "ragkeel.settings":
        whole = [a.name for a in node.names if not _is_section(a.name)]
        return f"imports {', '.join(whole)} from ragkeel.settings" if whole else None
    if isinstance(node, ast.ImportFrom) and node.module == "ragkeel":
        module = any(a.name == "settings" for a in node.names)
        return "imports the ragkeel.settings module" if module else None
    if isinstance(node, ast.Import):
        module = any(a.name == "ragkeel.settings" for a in node.names)
        return "imports the ragkeel.settings module" if module else None
    if isinstance(node, ast.Attribute) and node.attr == "settings" and not own_attribute:
        return f"reads .settings ({ast.unparse(node)})"
    return None


def _is_section(imported: str) -> bool:
    """A section of the settings (``GatewaySettings``...), not ``Settings`` or a loader."""
    return imported.endswith("Settings") and imported != "Settings"


def test_only_the_container_reads_the_settings() -> None:
    readers = {
        name: found
        for name, path in _modules()
        if name not in READERS and (found := _readings(name, path))
    }
    assert readers == {}, "read the value from the container instead (ragkeel/container.py)"


def test_the_check_sees_a_reader(tmp_path: Path) -> None:
    """The walk above finds each way of reading the settings (so its silence means something)."""
    source = tmp_path / "reader.py"
    source.write_text(
        "from ragkeel.settings import GatewaySettings, Settings, load_settings\n"
        "from ragkeel import settings\n"
        "import ragkeel.settings\n"
        "deadline = state.container.settings.gateway.request_deadline_s\n"
    )
    assert _readings("ragkeel.api.reader", source) == [
        "1: imports Settings, load_settings from ragkeel.settings",
        "2: imports the ragkeel.settings module",
        "3: imports the ragkeel.settings module",
        "4: reads .settings (state.container.settings)",
    ]


def test_a_lower_layer_may_take_its_own_section(tmp_path: Path) -> None:
    section = "from ragkeel.settings import DeploymentSettings, GatewaySettings\n"
    assert _readings("ragkeel.gateway.stack", _write(tmp_path, section)) == []


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "module.py"
    path.write_text(text)
    return path


def test_the_container_closes_what_it_built(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", embedding={"provider": "hashing"})
    with Container(settings) as container:
        store = container.store
        assert store.collections() == {}
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.collections()


def test_the_container_closes_on_an_error_too(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", embedding={"provider": "hashing"})
    with pytest.raises(KeyError), Container(settings) as container:
        store = container.store
        raise KeyError("boom")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.collections()


def test_the_edges_values_come_from_the_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(
        home=home,
        retrieval={"k": 7, "mode": "dense"},
        gateway={"request_deadline_s": 33.0, "fallback_to_local": True},
        observability={"keep_prompt_text": True},
        server={"drain_s": 2.5},
    )
    c = Container(settings)
    assert (c.home, c.uploads_dir) == (home, home / "uploads")
    assert (c.search_k, c.search_mode) == (7, "dense")
    assert (c.request_deadline_s, c.fallback_to_local) == (33.0, True)
    assert (c.keep_prompt_text, c.tracing_enabled, c.drain_s) == (True, True, 2.5)
    assert c.models_dir == settings.models_dir
    assert c.cost_ledger_path == settings.cost_ledger_path
    assert c.settings_snapshot() == settings.masked()
