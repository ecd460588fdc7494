"""``run_eval`` end to end on a tiny real corpus: SQLite on tmp_path, hashing embedder,
extractive answers, the real container. No model, no mocks."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import yaml
from eval_fixtures import TESTSET, TOPICS, make_tree

from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.evaluation.datasets.loaders import load_beir_cases
from ragkeel.evaluation.reports.results import EvalResults, read_results
from ragkeel.evaluation.run.config import EvalConfig, load_eval_config
from ragkeel.evaluation.run.harness import RESULTS_FILE, run_eval
from ragkeel.evaluation.run.loading import sample_beir_corpus
from ragkeel.gateway.base import ChatModel
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.observability.trace_store import SqliteTraceStore


def run(config: EvalConfig, out: Path, **kwargs: Any) -> EvalResults:
    return run_eval(config, out_dir=out, build=Container, **kwargs)


def with_(config: EvalConfig, **update: Any) -> EvalConfig:
    return config.model_copy(update=update)


@pytest.fixture
def config(tmp_path: Path) -> EvalConfig:
    return load_eval_config(make_tree(tmp_path))


def test_rows_follow_the_config_and_carry_the_contract(config: EvalConfig, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    results = run(config, tmp_path / "out", progress=lambda p, d, t: seen.append((p, d, t)))
    assert read_results(tmp_path / "out" / RESULTS_FILE) == json.loads(json.dumps(results))
    keys = [(r["dataset"], r["id"]) for r in results["rows"]]
    assert keys == [("beir", f"q{i}") for i in range(len(TOPICS))] + [
        ("curated", c["id"]) for c in TESTSET
    ]
    assert results["name"] == "tiny" and results["settings"]["embedding"]["provider"] == "hashing"
    assert [d["n_cases"] for d in results["datasets"]] == [len(TOPICS), len(TESTSET)]
    assert all(len(d["sha256"]) == 64 for d in results["datasets"])
    assert ("ask", len(keys), len(keys)) in seen and ("ingest beir", 1, 1) in seen
    for r in results["rows"]:
        assert r["error"] is None and r["answer"] is not None and r["trace_id"]
        assert set(r["metrics"]) >= {"ndcg@5", "recall@5", "mrr@5", "p@5", "hit@5", "f1", "judge"}
        assert r["metrics"]["judge"] is None and r["judge"] is None
        assert all(v is None or 0.0 <= v <= 1.0 for v in r["metrics"].values())
        assert r["latency_ms"]["total"] >= r["latency_ms"]["retrieve"] > 0
        assert [h["rank"] for h in r["retrieved"]] == list(range(1, len(r["retrieved"]) + 1))


def test_retrieval_metrics_pool_chunks_to_documents(config: EvalConfig, tmp_path: Path) -> None:
    rows = {r["id"]: r for r in run(config, tmp_path / "out")["rows"]}
    for i in range(len(TOPICS)):  # each query is its document's title: ranked first
        row = rows[f"q{i}"]
        assert row["retrieved"][0]["document_id"] == f"d{i}"
        assert row["metrics"]["ndcg@5"] == 1.0 and row["metrics"]["mrr@5"] == 1.0
        assert row["metrics"]["p@5"] == 0.2 and row["metrics"]["hit@5"] == 1.0
        assert row["metrics"]["f1"] is None  # BEIR has no reference answers
    keys = rows["keys"]  # relevance by source-file glob
    assert keys["metrics"]["recall@5"] == 1.0
    assert keys["metrics"]["mrr@5"] == (
        1.0 if keys["retrieved"][0]["source"].endswith("keys.md") else 0.5
    )
    assert rows["bread"]["metrics"]["ndcg@5"] is None  # no relevance: not applicable


def test_answer_metrics_and_abstention(config: EvalConfig, tmp_path: Path) -> None:
    results = run(config, tmp_path / "out")
    rows = {r["id"]: r for r in results["rows"]}
    assert rows["bread"]["answer"]["mode"] == "cannot_answer"  # type: ignore[index]
    assert rows["bread"]["metrics"]["correct_abstention"] == 1.0
    assert rows["keys"]["answer"]["mode"] == "extractive"  # type: ignore[index]
    assert rows["keys"]["metrics"]["contains"] == 1.0
    agg = results["aggregates"]
    assert agg["abstention"]["n_unanswerable"] == 1
    assert agg["abstention"]["refused_when_unanswerable"] == 1.0
    assert set(agg["by_tag"]) == {"beir", "edge", "adversarial", "out-of-scope"}
    assert agg["by_tag"]["edge"]["f1"]["n"] == 2
    assert agg["ops"]["n"] == len(rows) and agg["ops"]["error_share"] == 0.0


def comparable(results: EvalResults) -> list[dict[str, Any]]:
    """Rows without what legitimately differs between runs (timings, trace ids)."""
    return [
        {k: v for k, v in r.items() if k not in ("latency_ms", "trace_id")} for r in results["rows"]
    ]


def test_rows_are_identical_with_one_or_four_workers(config: EvalConfig, tmp_path: Path) -> None:
    one = run(with_(config, concurrency=1), tmp_path / "one")
    four = run(with_(config, concurrency=4), tmp_path / "four")
    assert comparable(one) == comparable(four)
    assert one["aggregates"]["overall"] == four["aggregates"]["overall"]


def test_second_run_reuses_the_index(config: EvalConfig, tmp_path: Path) -> None:
    first = run(config, tmp_path / "a")["run"]["ingest"]  # type: ignore[typeddict-item]
    second = run(config, tmp_path / "b")["run"]["ingest"]  # type: ignore[typeddict-item]
    assert first["beir"]["documents_written"] == 2 * len(TOPICS)
    assert second["beir"]["documents_written"] == 0
    assert second["beir"]["documents_unchanged"] == 2 * len(TOPICS)
    assert second["curated"]["documents_written"] == 0


def test_a_failing_case_is_an_error_row_and_the_run_goes_on(tmp_path: Path) -> None:
    config = load_eval_config(make_tree(tmp_path, blank_query=True))
    results = run(config, tmp_path / "out")
    rows = {r["id"]: r for r in results["rows"]}
    bad = rows["q-blank"]
    assert bad["error"] is not None and bad["error"]["code"] == "QUERY_INVALID"
    assert bad["answer"] is None and bad["trace_id"]
    assert bad["metrics"]["ndcg@5"] == 0.0 and bad["metrics"]["answered"] == 0.0
    assert bad["metrics"]["grounded_share"] is None
    assert all(r["error"] is None for k, r in rows.items() if k != "q-blank")
    assert results["aggregates"]["ops"]["error_share"] == pytest.approx(1 / len(rows))
    traces = SqliteTraceStore(config.home / "traces.db")  # type: ignore[operator]
    try:
        trace = traces.get(bad["trace_id"])  # type: ignore[arg-type]
        assert trace is not None and trace.outcome == "error" and trace.route == "eval.run"
    finally:
        traces.close()


def test_max_cases_keeps_the_first_cases_and_says_it_cut(
    config: EvalConfig, tmp_path: Path
) -> None:
    limited = with_(config, limits=config.limits.model_copy(update={"max_cases": 3}))
    results = run(limited, tmp_path / "out")
    assert [r["id"] for r in results["rows"]] == ["q0", "q1", "q2"]
    info = results["run"]  # type: ignore[typeddict-item]
    assert info["cut"] == "max_cases" and info["planned_cases"] == len(TOPICS) + len(TESTSET)
    assert "curated" not in info["ingest"]  # none of its cases runs: not ingested


def test_max_seconds_starts_no_case_past_the_deadline(config: EvalConfig, tmp_path: Path) -> None:
    limited = with_(config, limits=config.limits.model_copy(update={"max_seconds": 1e-6}))
    results = run(limited, tmp_path / "out")
    assert results["rows"] == [] and results["run"]["cut"] == "max_seconds"  # type: ignore[typeddict-item]
    assert (tmp_path / "out" / RESULTS_FILE).is_file()


def test_limit_caps_cases_per_data_set(config: EvalConfig, tmp_path: Path) -> None:
    results = run(config, tmp_path / "out", limit=2)
    assert [d["n_cases"] for d in results["datasets"]] == [2, 2]
    assert len(results["rows"]) == 4 and results["run"]["cut"] is None  # type: ignore[typeddict-item]


def test_judge_without_a_model_is_a_config_error(config: EvalConfig, tmp_path: Path) -> None:
    judged = with_(config, judge=config.judge.model_copy(update={"enabled": True}))
    with pytest.raises(ConfigError, match=r"judge\.enabled needs a chat model"):
        run(judged, tmp_path / "out")


def test_corpus_sample_keeps_judged_documents_plus_seeded_distractors(tmp_path: Path) -> None:
    config = load_eval_config(make_tree(tmp_path))
    beir = config.datasets[0].path
    dataset = load_beir_cases(beir, limit=2, seed=1)
    judged = {d for c in dataset.cases for d in c.relevant_doc_ids}

    def sampled_ids(seed: int, out: Path) -> list[str]:
        sampled = sample_beir_corpus(dataset, beir / "corpus.jsonl", 3, seed, out)
        assert sampled.corpus is not None and sampled.corpus.collection == f"eval-{dataset.name}"
        lines = Path(sampled.corpus.paths[0]).read_text().splitlines()
        return [json.loads(line)["_id"] for line in lines]

    ids = sampled_ids(0, tmp_path / "s0")
    assert len(ids) == len(judged) + 3 and judged <= set(ids)
    assert ids == sampled_ids(0, tmp_path / "s0b")  # same seed, same sample
    assert any(sampled_ids(s, tmp_path / f"s{s}") != ids for s in range(1, 6))


def test_corpus_sample_in_a_run_ingests_only_the_sample(tmp_path: Path) -> None:
    path = make_tree(tmp_path)
    config = load_eval_config(path)
    beir = config.datasets[0].model_copy(update={"corpus_sample": 2, "limit": 3})
    results = run(with_(config, datasets=(beir,)), tmp_path / "out")
    assert results["run"]["ingest"]["beir"]["documents_written"] == 3 + 2  # type: ignore[typeddict-item]
    assert all(r["metrics"]["hit@5"] == 1.0 for r in results["rows"])


class ScriptedContainer(Container):
    """The real container with the scripted chat model (the package's fake, at the model
    boundary): judge replies alternate 0.9 / 0.4 / 0.9, so they straddle 0.5."""

    replies = ('{"score": 0.9, "reason": "supported"}', '{"score": 0.4, "reason": "partly"}')

    @cached_property
    def chat_model(self) -> ChatModel | None:
        counter = iter(range(10**6))
        return ScriptedChatModel(lambda request: self.replies[next(counter) % 2])


def test_judge_scores_answered_cases_and_reports_unstable_verdicts(
    config: EvalConfig, tmp_path: Path
) -> None:
    judged = with_(config, judge=config.judge.model_copy(update={"enabled": True}), concurrency=1)
    results = run_eval(judged, out_dir=tmp_path / "out", build=ScriptedContainer)
    rows = {r["id"]: r for r in results["rows"]}
    assert rows["bread"]["judge"] is None and rows["bread"]["metrics"]["judge"] is None
    verdict = rows["keys"]["judge"]
    assert verdict is not None and len(verdict["scores"]) == 3
    assert verdict["verdict"] == "unstable" and verdict["prompt_version"] == "judge_v1"
    assert rows["keys"]["metrics"]["judge"] == verdict["mean"]
    assert verdict["mean"] == pytest.approx(sum(verdict["scores"]) / 3)
    assert results["aggregates"]["overall"]["judge"]["n"] == sum(
        1 for r in rows.values() if r["answer"] and r["answer"]["mode"] != "cannot_answer"
    )


def test_ask_in_turns_a_data_set_into_out_of_scope_negatives(tmp_path: Path) -> None:
    negatives = {"name": "beir-in-curated", "kind": "beir", "path": "../data/beir"}
    path = make_tree(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["datasets"].append({**negatives, "ask_in": "curated"})
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_eval_config(path)
    results = run(
        with_(config, limits=config.limits.model_copy(update={"max_cases": None})), tmp_path / "out"
    )
    rows = [r for r in results["rows"] if r["dataset"] == "beir-in-curated"]
    assert len(rows) == len(TOPICS)
    assert all(r["expect"] == "cannot_answer" and "out_of_scope" in r["tags"] for r in rows)
    assert all(r["metrics"].get("ndcg@5") is None for r in rows)  # no relevance: no metric
    for r in rows:  # asked in the curated collection: every hit is one of its two files
        assert all(h["source"].endswith((".md",)) for h in r["retrieved"])
    refused = sum(r["answer"]["mode"] == "cannot_answer" for r in rows)
    abstention = results["aggregates"]["abstention"]
    assert abstention["n_unanswerable"] == len(rows) + 1  # + the curated out-of-scope case
    assert refused >= 1 and abstention["refused_when_unanswerable"] > 0
    assert (
        "beir-in-curated" not in results["run"]["ingest"]
        or not results["run"]["ingest"]["beir-in-curated"]
    )


def test_ask_in_must_name_another_data_set(tmp_path: Path) -> None:
    path = make_tree(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["datasets"][0]["ask_in"] = "nowhere"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match="ask_in"):
        load_eval_config(path)


def test_each_case_is_a_root_span_when_tracing_is_on(config: EvalConfig, tmp_path: Path) -> None:
    """Issue 12: one OpenTelemetry root span per case, carrying the case id and its trace id."""
    from ragkeel.observability import names
    from ragkeel.testing.otlp_sink import OtlpSink

    with OtlpSink() as sink:
        otlp = {"observability": {"otlp": {"endpoint": sink.endpoint}}}
        traced = with_(config, settings={**config.settings, **otlp}, concurrency=2)
        results = run(traced, tmp_path / "out")  # the container's close flushes the spans
        roots = sink.named(names.SPAN_EVAL_CASE)
    rows = results["rows"]
    assert len(roots) == len(rows) > 0
    assert {r.attributes[names.EVAL_CASE_ID] for r in roots} == {row["id"] for row in rows}
    assert {r.attributes[names.TRACE_ID] for r in roots} == {row["trace_id"] for row in rows}
    assert {r.trace_id for r in roots} == {row["trace_id"] for row in rows}  # the same ids
    retrievals = sink.named(names.span_of(names.STAGE_RETRIEVE))
    assert {s.parent_span_id for s in retrievals} == {r.span_id for r in roots}
