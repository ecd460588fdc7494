"""The eval config: strict keys, errors that name the key, paths relative to the config file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragkeel.errors import ConfigError
from ragkeel.evaluation.run.config import config_snapshot, load_eval_config, parse_eval_config

MINIMAL = {"name": "t", "datasets": [{"name": "a", "kind": "beir", "path": "data/beir"}]}


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_relative_paths_resolve_against_the_config_file_not_the_cwd(tmp_path: Path) -> None:
    data = {
        "name": "smoke",
        "home": "../.ragkeel-eval/smoke",
        "datasets": [
            {"name": "sec", "kind": "csv_qa", "path": "sec/qna.csv", "docs": "sec/docs"},
            {"name": "cur", "kind": "testset", "path": "c.jsonl", "corpus": ["../examples"]},
        ],
    }
    config = load_eval_config(write(tmp_path / "repo" / "evals" / "smoke.yaml", data))
    evals = (tmp_path / "repo" / "evals").resolve()
    assert config.home == evals.parent / ".ragkeel-eval" / "smoke"
    assert config.datasets[0].path == evals / "sec" / "qna.csv"
    assert config.datasets[0].docs == evals / "sec" / "docs"
    assert config.datasets[1].corpus == (evals.parent / "examples",)
    assert config.k == 10 and config.concurrency == 4 and not config.judge.enabled


def test_default_home_is_next_to_the_config(tmp_path: Path) -> None:
    config = load_eval_config(write(tmp_path / "e" / "x.yaml", MINIMAL))
    assert config.home == (tmp_path / "e").resolve() / ".ragkeel-eval" / "t"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    data = {**MINIMAL, "datasets": [{"name": "a", "kind": "beir", "path": str(tmp_path / "b")}]}
    config = parse_eval_config(data, base=tmp_path / "elsewhere")
    assert config.datasets[0].path == (tmp_path / "b").resolve()


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({**MINIMAL, "concurency": 2}, "concurency"),
        ({**MINIMAL, "datasets": [{**MINIMAL["datasets"][0], "limt": 5}]}, "datasets.0.limt"),  # type: ignore[dict-item]
        ({**MINIMAL, "k": 0}, "k"),
        ({**MINIMAL, "judge": {"repeats": 0}}, "judge.repeats"),
        ({**MINIMAL, "datasets": []}, "datasets"),
        ({**MINIMAL, "datasets": [{"name": "a", "kind": "xml", "path": "p"}]}, "datasets.0.kind"),
        ({**MINIMAL, "name": "has space"}, "name"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, data: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"\b{named}\b"):
        load_eval_config(write(tmp_path / "c.yaml", data))


@pytest.mark.parametrize(
    ("dataset", "problem"),
    [
        ({"name": "s", "kind": "csv_qa", "path": "q.csv"}, "needs `docs`"),
        ({"name": "s", "kind": "squad", "path": "x.json", "docs": "d"}, "csv_qa data sets only"),
        ({"name": "s", "kind": "beir", "path": "b", "corpus": ["d"]}, "testset data sets only"),
        ({"name": "s", "kind": "squad", "path": "x", "corpus_sample": 9}, "beir data sets only"),
    ],
)
def test_kind_specific_options(tmp_path: Path, dataset: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_eval_config({"name": "t", "datasets": [dataset]}, base=tmp_path)


def test_duplicate_data_set_names_are_refused(tmp_path: Path) -> None:
    entry = MINIMAL["datasets"][0]  # type: ignore[index]
    with pytest.raises(ConfigError, match="a repeated"):
        parse_eval_config({"name": "t", "datasets": [entry, entry]}, base=tmp_path)


def test_bad_pipeline_setting_fails_at_load_naming_settings_and_key(tmp_path: Path) -> None:
    data = {**MINIMAL, "settings": {"generation": {"mode": "poetic"}}}
    with pytest.raises(ConfigError, match=r"settings.*generation\.mode"):
        load_eval_config(write(tmp_path / "c.yaml", data))


def test_home_belongs_at_the_top_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top-level `home`"):
        parse_eval_config({**MINIMAL, "settings": {"home": "x"}}, base=tmp_path)


def test_settings_overrides_reach_the_run_settings(tmp_path: Path) -> None:
    data = {**MINIMAL, "settings": {"embedding": {"provider": "hashing"}, "generation": {"k": 3}}}
    config = load_eval_config(write(tmp_path / "c.yaml", data))
    settings = config.build_settings()
    assert settings.embedding.provider == "hashing" and settings.generation.k == 3
    assert settings.home == config.home


def test_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_eval_config(bad)
    with pytest.raises(ConfigError, match="mapping"):
        load_eval_config(write(tmp_path / "list.yaml", [1, 2]))
    with pytest.raises(ConfigError, match="cannot read"):
        load_eval_config(tmp_path / "missing.yaml")


def test_snapshot_is_json_data_with_resolved_paths(tmp_path: Path) -> None:
    config = load_eval_config(write(tmp_path / "c.yaml", MINIMAL))
    snapshot = config_snapshot(config)
    assert snapshot["datasets"][0]["path"] == str((tmp_path / "data" / "beir").resolve())
    assert snapshot["limits"] == {"max_cases": None, "max_seconds": None}
