"""``ragkeel eval run CONFIG.yaml`` through the real command on an ``eval`` sub-app built the way
``cli/eval.py`` registers it, on the tiny real evaluation tree of ``eval_fixtures``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import typer
from typer.testing import CliRunner

from ragkeel.cli.eval_run import register
from ragkeel.errors import ConfigError
from ragkeel.evaluation.reports.results import read_results

HERE = Path(__file__).resolve().parent


def _load_fixtures() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "eval_fixtures", HERE.parent / "evaluation" / "eval_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fixtures = _load_fixtures()


def eval_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def group() -> None:
        """The ``eval`` group."""

    register(app)
    return app


def test_run_writes_results_and_report_and_prints_a_summary(tmp_path: Path) -> None:
    config = fixtures.make_tree(tmp_path)
    out = tmp_path / "out"
    done = CliRunner().invoke(eval_app(), ["run", str(config), "--out", str(out)])
    assert done.exit_code == 0, done.output
    results = read_results(out / "results.json")
    assert len(results["rows"]) == len(fixtures.TOPICS) + len(fixtures.TESTSET)
    html = (out / "report.html").read_text()
    assert "Worst cases" in html and "data:image/png;base64," in html
    assert "ndcg@5" in done.output and "overall" in done.output
    assert str(out / "results.json") in done.output.replace("\n", "")
    assert "ask" in done.output  # the progress bar's phase


def test_default_output_is_under_the_run_home_and_limit_caps_cases(tmp_path: Path) -> None:
    config = fixtures.make_tree(tmp_path)
    done = CliRunner().invoke(eval_app(), ["run", str(config), "--limit", "1"])
    assert done.exit_code == 0, done.output
    data = json.loads((tmp_path / "run-home" / "results" / "results.json").read_text())
    assert [d["n_cases"] for d in data["datasets"]] == [1, 1]


def test_bad_config_key_fails_before_any_work(tmp_path: Path) -> None:
    config = fixtures.make_tree(tmp_path, concurency=3)
    done = CliRunner().invoke(eval_app(), ["run", str(config)])
    assert isinstance(done.exception, ConfigError)  # `ragkeel` prints it and exits 2
    assert "concurency" in str(done.exception)
    assert not (tmp_path / "run-home").exists()


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    done = CliRunner().invoke(eval_app(), ["run", str(tmp_path / "nope.yaml")])
    assert done.exit_code == 2


@pytest.mark.parametrize("limit", ["0", "x"])
def test_limit_must_be_a_positive_integer(tmp_path: Path, limit: str) -> None:
    config = fixtures.make_tree(tmp_path)
    done = CliRunner().invoke(eval_app(), ["run", str(config), "--limit", limit])
    assert done.exit_code == 2
