"""The evaluation config (``ragkeel eval run CONFIG.yaml``): which data sets to ask, with which
pipeline settings, how many at once and for how long.

::

    name: ci-smoke
    home: ../.ragkeel-eval/ci-smoke   # RAGKEEL_HOME of the run; its index is reused
    settings: {embedding: {provider: hashing}, generation: {mode: extractive}}
    k: 10                             # cutoff of the retrieval metrics
    concurrency: 4                    # worker threads asking questions
    limits: {max_cases: 500, max_seconds: 1800}
    judge: {enabled: false, repeats: 3, threshold: 0.5}
    datasets:
      - {name: scifact, kind: beir, path: /data/scifact, split: test, limit: 50, corpus_sample: 1000}
      - {name: xquad, kind: squad, path: xquad.en.json, limit: 50, seed: 0}
      - {name: sec, kind: csv_qa, path: qna.csv, docs: docs}
      - {name: curated, kind: testset, path: cases/curated.jsonl, corpus: [../examples]}
      - {name: xquad-in-scifact, kind: squad, path: xquad.en.json, limit: 50, seed: 1, ask_in: scifact}

``cases`` (issue 15) asks other questions of a data set's corpus: the test-set JSONL at that path
(``datasets/testset.py``; e.g. the multi-turn conversations of ``evals/cases/multiturn-xquad.jsonl``,
whose relevant ids are the corpus's) replaces the data set's own questions; ``limit`` and
``seed`` then sample those. ``ask_in`` makes a data set out-of-scope negatives: its questions are asked in the other data
set's collection, where they have no answer, so every one of them expects "cannot answer" (the
refusal side of the abstention figures). Unknown keys are errors (a typo must not silently run the defaults). Relative paths (``home``,
``path``, ``docs``, ``corpus``) are resolved against the config file's directory, so a config
runs the same from any working directory. ``settings`` holds the same keys as ``ragkeel.yaml``
and is passed to ``load_settings(**settings)``: it wins over ``RAGKEEL_*`` variables and
``ragkeel.yaml``, and the effective settings are pinned in ``results.json``. Every problem is a
:class:`~ragkeel.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ragkeel.errors import ConfigError
from ragkeel.evaluation.cases import DatasetKind
from ragkeel.settings import Settings, load_settings

DEFAULT_HOME_DIR = ".ragkeel-eval"  # default home: <config dir>/.ragkeel-eval/<name>
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # used in collection names and file names


def _resolve(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    base = info.context.get("base") if isinstance(info.context, dict) else None
    path = value.expanduser()
    if not path.is_absolute() and isinstance(base, Path):
        path = base / path
    return path.resolve() if path.is_absolute() else path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JudgeConfig(_Strict):
    enabled: bool = False
    repeats: int = Field(default=3, ge=1, le=20)  # judge calls per answer (mean and spread)
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)


class Limits(_Strict):
    """Past either limit no new case is started; the rows record what ran."""

    max_cases: int | None = Field(default=None, ge=1)  # the first N cases, in config order
    max_seconds: float | None = Field(default=None, gt=0)  # wall clock from the start of the run


class DatasetConfig(_Strict):
    name: str = Field(pattern=_NAME_PATTERN)
    kind: DatasetKind
    path: Path
    split: str = "test"  # beir: the qrels split
    limit: int | None = Field(default=None, ge=1)  # cases kept (a seeded sample when smaller)
    seed: int = 0
    docs: Path | None = None  # csv_qa: the folder the "Source Docs" globs match in
    corpus: tuple[Path, ...] = ()  # testset: files/folders to ingest
    corpus_sample: int | None = Field(default=None, ge=0)  # beir: judged docs + N distractors
    # out-of-scope negatives: ask these questions in another data set's collection (nothing of
    # this set is ingested); every case then expects "cannot answer"
    ask_in: str | None = Field(default=None, pattern=_NAME_PATTERN)
    cases: Path | None = None  # a test-set JSONL asked of this data set's corpus instead

    @field_validator("path", "docs", "cases", mode="after")
    @classmethod
    def _resolve_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)

    @field_validator("corpus", mode="after")
    @classmethod
    def _resolve_corpus(cls, value: tuple[Path, ...], info: ValidationInfo) -> tuple[Path, ...]:
        return tuple(p for p in (_resolve(v, info) for v in value) if p is not None)

    @model_validator(mode="after")
    def _kind_options(self) -> DatasetConfig:
        if self.kind == "csv_qa" and self.docs is None:
            raise ValueError("a csv_qa data set needs `docs` (the folder of its source files)")
        if self.docs is not None and self.kind != "csv_qa":
            raise ValueError("`docs` applies to csv_qa data sets only")
        if self.corpus and self.kind != "testset":
            raise ValueError("`corpus` applies to testset data sets only")
        if self.corpus_sample is not None and self.kind != "beir":
            raise ValueError("`corpus_sample` applies to beir data sets only")
        if self.cases is not None and (self.kind == "testset" or self.ask_in is not None):
            raise ValueError("`cases` asks other questions of a corpus: not with testset or ask_in")
        return self


class EvalConfig(_Strict):
    name: str = Field(pattern=_NAME_PATTERN)
    home: Path | None = None  # default: <config dir>/.ragkeel-eval/<name>
    settings: dict[str, Any] = Field(default_factory=dict)
    k: int = Field(default=10, ge=1, le=100)
    concurrency: int = Field(default=4, ge=1, le=64)
    limits: Limits = Limits()
    judge: JudgeConfig = JudgeConfig()
    datasets: tuple[DatasetConfig, ...] = Field(min_length=1)

    @field_validator("home", mode="after")
    @classmethod
    def _resolve_home(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)

    @field_validator("settings", mode="after")
    @classmethod
    def _no_home_in_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "home" in value:
            raise ValueError("set the run's home with the top-level `home` key, not settings.home")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> EvalConfig:
        names = [d.name for d in self.datasets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"data set names must be unique: {', '.join(duplicates)} repeated")
        for d in self.datasets:
            if d.ask_in is not None and (d.ask_in == d.name or d.ask_in not in names):
                raise ValueError(
                    f"data set {d.name!r}: ask_in must name another data set of this config, "
                    f"got {d.ask_in!r}"
                )
        return self

    def build_settings(self) -> Settings:
        """The run's ``Settings``: ``settings`` overrides with ``home`` as RAGKEEL_HOME."""
        overrides = dict(self.settings)
        if self.home is not None:
            overrides["home"] = self.home
        try:
            return load_settings(**overrides)
        except ConfigError as exc:
            raise ConfigError(
                f"eval config {self.name!r}, key `settings`: {exc.message}",
                hint="the keys under `settings` are those of ragkeel.yaml",
            ) from exc


def parse_eval_config(data: Any, *, base: Path, source: str = "<eval config>") -> EvalConfig:
    """Validate ``data`` (the loaded YAML); relative paths resolve against ``base``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        config = EvalConfig.model_validate(data, context={"base": base.resolve()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<root>"
            problems.append(f"{key}: {err['msg']}")
        raise ConfigError(
            f"{source}: invalid eval config: " + "; ".join(problems),
            hint="see ragkeel/evaluation/run/config.py for the keys",
        ) from exc
    if config.home is None:
        home = base.resolve() / DEFAULT_HOME_DIR / config.name
        config = config.model_copy(update={"home": home})
    return config


def load_eval_config(path: Path) -> EvalConfig:
    """Read and validate an eval config file (see the module docstring)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read eval config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"eval config {path} is not valid YAML: {exc}") from exc
    config = parse_eval_config(loaded, base=path.parent, source=str(path))
    config.build_settings()  # fail now, not after ingesting, on a bad `settings` key
    return config


def config_snapshot(config: EvalConfig) -> dict[str, Any]:
    """The config as loaded, paths resolved, as JSON data (for ``results.json``)."""
    data: dict[str, Any] = config.model_dump(mode="json")
    return data
