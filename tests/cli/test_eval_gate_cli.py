"""``ragkeel eval compare`` and ``ragkeel eval gate`` through the real command functions on an
``eval`` sub-app built the way ``cli/eval.py`` registers them; results files are synthetic."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import typer
from typer.testing import CliRunner

from ragkeel.cli.eval_gate import register

HERE = Path(__file__).resolve().parent
GATE_YAML = HERE.parents[1] / "evals" / "gate.yaml"


def _load_factory() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "results_factory", HERE.parent / "evaluation" / "results_factory.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


factory = _load_factory()


def eval_app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(eval_app(), list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def results(path: Path, f1: list[float], **kwargs: object) -> Path:
    scores = {key: {**value, "ndcg@10": 0.5} for key, value in factory.uniform("sq", f1).items()}
    return factory.write(path, factory.make_results(scores, **kwargs))


def f1_gate(tmp_path: Path) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(
        "metrics:\n  f1: {tolerance: 0.03}\n  ndcg@10: {tolerance: 0.02}\n"
        "budgets:\n  latency_p95_ms: {stage: total, max: 2000}\n"
    )
    return path


def test_compare_prints_a_table_and_json(tmp_path: Path) -> None:
    a = results(tmp_path / "a.json", [1.0] * 20, name="base")
    b = results(tmp_path / "b.json", [0.0] * 5 + [1.0] * 15, name="cand")
    code, out = invoke("compare", str(a), str(b))
    assert code == 0
    assert "A = base" in out and "-0.2500" in out and "Cases that changed most" in out
    code, out = invoke("compare", str(a), str(b), "--json")
    assert code == 0
    data = json.loads(out)
    f1 = next(m for m in data["metrics"] if m["metric"] == "f1" and m["scope"] == "overall")
    assert f1["delta"] == pytest.approx(-0.25) and f1["n"] == 20


def test_compare_rejects_a_file_that_is_not_results(tmp_path: Path) -> None:
    a = results(tmp_path / "a.json", [1.0])
    (tmp_path / "other.json").write_text('{"schema_version": 1}')
    code, out = invoke("compare", str(a), str(tmp_path / "other.json"))
    assert code == 2 and "error [DATASET_INVALID]" in out and "not an eval results file" in out


def test_gate_passes_on_the_same_scores(tmp_path: Path) -> None:
    base = results(tmp_path / "base.json", [1.0, 0.5] * 10)
    cur = results(tmp_path / "cur.json", [1.0, 0.5] * 10, answer_prefix="reworded")
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(cur), "--config", str(f1_gate(tmp_path))
    )
    assert code == 0, out
    assert "gate passed" in out


def test_gate_fails_with_every_reason(tmp_path: Path) -> None:
    base = results(tmp_path / "base.json", [1.0] * 30)
    ops = factory.default_ops(30)
    ops["latency_ms"]["total"]["p95"] = 2500.0
    cur = results(tmp_path / "cur.json", [0.0] * 20 + [1.0] * 10, ops=ops)
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(cur), "--config", str(f1_gate(tmp_path))
    )
    assert code == 1
    assert "gate FAILED: 3 regression(s)" in out
    assert "- f1 [overall]: significant drop beyond tolerance: 1.0000 -> 0.3333" in out
    assert "- f1 [sq]: significant drop" in out
    assert "- latency p95 total (ms) [current run]: 2500 exceeds the budget 2000" in out


def test_gate_notes_an_insignificant_drop(tmp_path: Path) -> None:
    base = results(tmp_path / "base.json", [1.0] * 3)
    cur = results(tmp_path / "cur.json", [0.0] * 3)
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(cur), "--config", str(f1_gate(tmp_path))
    )
    assert code == 0
    assert "note: f1 [overall]: drop beyond tolerance but not significant" in out


def test_gate_on_different_data_is_invalid_input(tmp_path: Path) -> None:
    base = results(tmp_path / "base.json", [1.0] * 5)
    cur = results(tmp_path / "cur.json", [1.0] * 5, checksums={"sq": "e" * 64})
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(cur), "--config", str(GATE_YAML)
    )
    assert code == 2
    assert "error [DATASET_MISMATCH]" in out and "sha256" in out


def retrieval_only(path: Path, ndcg: list[float], **kwargs: object) -> Path:
    """A run of a retrieval-only config (BEIR qrels, extractive answers, no reference answers):
    every metric of the committed gate config is computed, but f1 and contains apply to none."""
    answer = {"correct_abstention": 1.0, "grounded_share": 1.0, "citation_validity": 1.0}
    scores = {
        ("scifact", f"q{i}"): {"ndcg@10": v, "recall@10": v, "f1": None, "contains": None, **answer}
        for i, v in enumerate(ndcg)
    }
    return factory.write(path, factory.make_results(scores, **kwargs))


def test_gate_on_retrieval_only_runs_reports_not_applicable_metrics(tmp_path: Path) -> None:
    base = retrieval_only(tmp_path / "base.json", [0.6, 0.4] * 40)
    cur = retrieval_only(tmp_path / "cur.json", [0.6, 0.4] * 40, answer_prefix="rerun")
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(cur), "--config", str(GATE_YAML)
    )
    assert code == 0, out
    assert "gate passed" in out and "metric missing" not in out
    assert "not applicable (no case of either run has a value): f1, contains" in out
    worse = retrieval_only(tmp_path / "worse.json", [0.3, 0.2] * 40)
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(worse), "--config", str(GATE_YAML)
    )
    assert code == 1 and "- ndcg@10 [overall]: significant drop" in out


def test_gate_on_runs_that_compute_different_metrics_is_invalid_input(tmp_path: Path) -> None:
    keys = [("sq", f"q{i}") for i in range(10)]
    base = factory.write(  # an evaluation without answers: no f1 computed at all
        tmp_path / "base.json", factory.make_results({k: {"ndcg@10": 0.5} for k in keys})
    )
    cur = factory.write(
        tmp_path / "cur.json", factory.make_results({k: {"ndcg@10": 0.5, "f1": 1.0} for k in keys})
    )
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(cur), "--config", str(f1_gate(tmp_path))
    )
    assert code == 2, out
    assert "error [METRIC_MISMATCH]" in out and "f1 [overall]: only the current (B) run" in out


@pytest.mark.parametrize("bad", ["missing.yaml", "typo.yaml"])
def test_gate_with_a_bad_config_is_invalid_input(tmp_path: Path, bad: str) -> None:
    (tmp_path / "typo.yaml").write_text("alpah: 0.05\n")
    base = results(tmp_path / "base.json", [1.0])
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(base), "--config", str(tmp_path / bad)
    )
    assert code == 2 and "error [CONFIG_INVALID]" in out


def test_update_baseline_copies_current_on_purpose(tmp_path: Path) -> None:
    base = results(tmp_path / "base.json", [1.0] * 30)
    cur = results(tmp_path / "cur.json", [0.0] * 30, checksums={"sq": "d" * 64})
    gate = str(f1_gate(tmp_path))
    code, out = invoke(
        "gate", "--baseline", str(base), "--current", str(cur), "--config", gate,
        "--update-baseline",
    )  # fmt: skip
    assert code == 0
    assert "baseline updated on purpose" in out
    written = json.loads(base.read_text())
    assert written["datasets"][0]["sha256"] == "d" * 64
    assert written["rows"][0]["retrieved"] == []  # slimmed for committing
    assert written["rows"][0]["metrics"]["f1"] == 0.0  # per-row metrics are kept
    code, _ = invoke("gate", "--baseline", str(base), "--current", str(cur), "--config", gate)
    assert code == 0
