"""The models directory is one per user, not one per ``RAGKEEL_HOME`` (issue 10).

Before, the model files lived under each home: an evaluation config with a home of its own found
no model and answered every question extractively (``MODEL_MISSING``, 100 % degraded), silently.
Here an evaluation with a fresh home runs against the installed model, and an empty models
directory (``models.dir``) is what gives ``MODEL_MISSING``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ragkeel.cli.main import app
from ragkeel.container import Container
from ragkeel.evaluation.reports.results import EvalResults
from ragkeel.evaluation.run.config import load_eval_config
from ragkeel.evaluation.run.harness import run_eval
from ragkeel.models.cache import adopt_from_home, default_models_dir
from ragkeel.models.gguf import DEFAULT_MODEL, MODELS

REPO = Path(__file__).resolve().parents[2]
INSTALLED = (default_models_dir() / MODELS[DEFAULT_MODEL].filename).exists()
CASE = {
    "id": "keys-rotation-interval",
    "question": "How often must production API keys be rotated?",
    "expect": "answer",
    "reference_answers": ["every 90 days", "90 days"],
    "relevant_source_globs": ["api-key-rotation.md"],
    "tags": [],
}


def evaluate(tmp_path: Path, **settings: Any) -> EvalResults:
    """``ragkeel eval run`` of one question over examples/, with a home nobody used before."""
    (tmp_path / "cases.jsonl").write_text(json.dumps(CASE) + "\n", encoding="utf-8")
    config = {
        "name": "fresh-home",
        "home": "fresh-home",  # relative to the config file: a new, empty RAGKEEL_HOME
        "settings": {
            "embedding": {"provider": "hashing"},
            "generation": {
                "provider": "local",
                "mode": "generative",
                "gate_threshold": 0.1,  # hashing cosines: let the question through the gate
                "max_answer_tokens": 12,  # a short answer: this is about finding the model
                "context_budget": 200,
                "local": {"n_ctx": 2048},
            },
            **settings,
        },
        "k": 5,
        "concurrency": 1,
        "datasets": [
            {
                "name": "curated",
                "kind": "testset",
                "path": "cases.jsonl",
                "corpus": [str(REPO / "examples")],
            }
        ],
    }
    path = tmp_path / "fresh.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    loaded = load_eval_config(path)
    assert loaded.home == tmp_path / "fresh-home" and not loaded.home.exists()
    return run_eval(loaded, out_dir=tmp_path / "out", build=Container)


@pytest.mark.model
@pytest.mark.timeout(600)
def test_an_evaluation_with_a_fresh_home_finds_the_installed_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not INSTALLED:
        if os.environ.get("CI"):
            pytest.fail("the local model is missing: make setup must install it")
        pytest.skip(f"local model not installed in {default_models_dir()}: run `make setup`")
    monkeypatch.delenv("RAGKEEL_MODELS__DIR")  # the suite's empty one: use the default here
    results = evaluate(tmp_path)
    (row,) = results["rows"]
    assert row["error"] is None and row["answer"] is not None, row
    answer = row["answer"]
    assert answer["degraded_reason"] != "MODEL_MISSING"
    assert answer["mode"] == "generative" and answer["model"] == DEFAULT_MODEL
    assert not answer["degraded"]
    assert results["settings"]["models"]["dir"] == str(default_models_dir())
    assert not (tmp_path / "fresh-home" / "models").exists()


def test_an_empty_models_dir_gives_model_missing(tmp_path: Path) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    results = evaluate(tmp_path, models={"dir": str(empty)})
    (row,) = results["rows"]
    assert row["error"] is None and row["answer"] is not None, row
    answer = row["answer"]
    assert answer["degraded"] and answer["degraded_reason"] == "MODEL_MISSING"
    assert answer["mode"] == "extractive"
    assert results["settings"]["models"]["dir"] == str(empty)
    assert list(empty.iterdir()) == []  # looking for a model creates nothing


def test_models_list_names_the_directory_it_looks_in(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"models directory: {tmp_path / 'ragkeel-models'}"  # the suite's conftest
    assert all(line.endswith("-") for line in lines[1:]) and len(lines) == 1 + len(MODELS)


def test_a_model_installed_under_a_home_by_an_older_version_is_linked_not_copied(
    tmp_path: Path,
) -> None:
    home, models_dir = tmp_path / "home", tmp_path / "user-models"
    (home / "models").mkdir(parents=True)
    old = home / "models" / "m.gguf"
    old.write_bytes(b"GGUF weights")
    assert adopt_from_home(models_dir, home, "absent.gguf") is None
    new = adopt_from_home(models_dir, home, "m.gguf")
    assert new == models_dir / "m.gguf" and new.read_bytes() == b"GGUF weights"
    assert new.stat().st_ino == old.stat().st_ino  # the same file: no second gigabyte on disk
    new.unlink()
    new.write_bytes(b"already installed")
    assert adopt_from_home(models_dir, home, "m.gguf") is None  # an installed file is kept
    assert new.read_bytes() == b"already installed"
