"""Typed configuration, read once at the edge.

Sources, highest priority first: constructor arguments, ``RAGKEEL_*`` environment variables
(nested with ``__``, e.g. ``RAGKEEL_RETRIEVAL__FUSION=rrf``), the YAML file (``ragkeel.yaml`` in the
working directory, or the path in ``RAGKEEL_CONFIG``), then defaults. ``load_settings`` turns a
validation failure into a ``ConfigError`` that names the key and the bad value (never a secret:
``ragkeel.redaction``). Strings in the YAML file and in ``load_settings``'s arguments may refer
to environment variables, ``api_key: ${OPENAI_API_KEY}`` (``ragkeel.env_refs``: resolved here,
once; an unset one is ``CONFIG_ENV_MISSING``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ragkeel.env_refs import expand
from ragkeel.errors import ConfigError, LanguageError
from ragkeel.languages import DEFAULT_LANGUAGE, check_language
from ragkeel.models.cache import default_models_dir
from ragkeel.redaction import masked as masked_value

DEFAULT_CONFIG_FILE = "ragkeel.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostgresStorageSettings(_Section):
    """``storage.backend: postgres`` (issue 13; storage/postgres/, the ``scale`` extra)."""

    url: SecretStr | None = None  # postgresql://user:password@host:port/database (masked)
    pool_size: int = Field(default=10, ge=1, le=1000)  # connections per process
    hnsw_ef_search: int = Field(default=200, ge=1, le=1000)  # HNSW candidate list per search
    exact_search_max_rows: int = Field(default=10_000, ge=0)  # at most this many: exact scan
    migrate_on_start: bool = True  # apply schema migrations on open (else `ragkeel db upgrade`)


class StorageSettings(_Section):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: Path | None = None  # default: $RAGKEEL_HOME/ragkeel.db
    busy_timeout_ms: int = Field(default=10_000, ge=0)
    postgres: PostgresStorageSettings = PostgresStorageSettings()

    @model_validator(mode="after")
    def _postgres_needs_a_url(self) -> StorageSettings:
        if self.backend == "postgres" and self.postgres.url is None:
            raise ValueError("storage.backend postgres needs storage.postgres.url")
        return self


class RemoteEmbeddingSettings(_Section):
    base_url: str = "http://127.0.0.1:8080/v1"
    api_key: SecretStr | None = None
    model: str = "text-embedding-3-small"
    dimension: int | None = Field(default=None, ge=1)  # learned from the first response if unset
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0)


class OnnxEmbeddingSettings(_Section):
    """``embedding.onnx`` (issue 15): a sentence-transformers ONNX export of your own instead of
    the pinned MiniLM (``models/onnx_export.py`` says what the directory holds). Collections
    record the model they were built with: switching is a re-embedding
    (``ragkeel collections reembed``)."""

    model_dir: Path | None = None  # None: the pinned all-MiniLM-L6-v2 (int8)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")  # pin of model.onnx
    pooling: Literal["mean", "cls", "max"] | None = None  # None: the export's 1_Pooling config
    max_length: int | None = Field(default=None, ge=8, le=8192)  # None: the export's
    # sentence_bert_config.json max_seq_length, else embedding.max_length

    @field_validator("model_dir", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value is not None else None

    @model_validator(mode="after")
    def _settings_need_a_dir(self) -> OnnxEmbeddingSettings:
        given = [k for k in ("sha256", "pooling", "max_length") if getattr(self, k) is not None]
        if given and self.model_dir is None:
            raise ValueError(
                f"{', '.join(given)} describe embedding.onnx.model_dir: set model_dir too"
            )
        return self


class EmbeddingSettings(_Section):
    provider: Literal["onnx", "hashing", "remote"] = "onnx"
    threads: int = Field(default=0, ge=0)  # 0 = one per core
    batch_size: int = Field(
        default=8, ge=1, le=1024
    )  # 8: same speed as 32, 1/3 the peak RSS (bench)
    max_length: int = Field(default=256, ge=8, le=512)  # model input tokens (MiniLM trained at 256)
    hashing_dimension: int = Field(default=384, ge=8)
    cache: bool = True  # cache vectors by (model, text hash)
    remote: RemoteEmbeddingSettings = RemoteEmbeddingSettings()
    onnx: OnnxEmbeddingSettings = OnnxEmbeddingSettings()  # your own export (issue 15)


class JobQueueSettings(_Section):
    """The ingestion job queue (issue 13, ``jobs/``): how its workers retry, heartbeat and stop.
    Used only when ``ingestion.queue`` names an engine."""

    queue_name: str = Field(default="ragkeel-ingest", min_length=1, max_length=64)
    max_attempts: int = Field(default=5, ge=1, le=100)  # then the job is dead (jobs list --failed)
    retry_base_s: int = Field(default=2, ge=0, le=3600)  # wait before retry n: base * 2**n ...
    retry_max_s: int = Field(default=300, ge=0, le=86_400)  # ... at most this
    concurrency: int = Field(default=1, ge=1, le=64)  # jobs one `ragkeel worker` runs at once
    heartbeat_s: float = Field(default=5.0, gt=0, le=600)  # a worker's heartbeat interval
    poll_s: float = Field(default=2.0, gt=0, le=600)  # idle workers look for due jobs (retries)
    stalled_after_s: float = Field(default=30.0, gt=0, le=86_400)  # no heartbeat: jobs retried
    shutdown_grace_s: float = Field(default=60.0, ge=0, le=86_400)  # SIGTERM: finish, then release


class IngestionSettings(_Section):
    # -- the job queue (issue 13): None = synchronous ingestion, as before --
    queue: Literal["procrastinate"] | None = None
    # PostgreSQL URL of the queue database; default: storage.postgres.url when that backend is on
    queue_url: SecretStr | None = None
    jobs: JobQueueSettings = JobQueueSettings()
    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    chunk_tokens: int = Field(default=256, ge=16, le=8192)
    chunk_overlap: float = Field(default=0.15, ge=0.0, lt=0.9)
    embed_batch_chunks: int = Field(
        default=64, ge=1
    )  # chunks buffered across documents per embed call
    # bounds on the work one file may cause (issue 9, hostile files; parsers/base.ParseLimits)
    max_inflated_bytes: int = Field(default=256 * 1024 * 1024, ge=1)  # ZIP formats: all members
    max_compression_ratio: float = Field(default=500.0, gt=1.0)  # ZIP member over 1 MiB inflated
    max_archive_members: int = Field(default=10_000, ge=1)  # ZIP formats: central directory
    max_pdf_pages: int = Field(default=2_000, ge=1)  # checked before any page is read
    max_parse_seconds: float = Field(default=120.0, gt=0)  # per file, between pages/blocks
    # -- parallel parsing (issue 14): worker processes parsing the next files while this one
    # embeds; "auto" = half the cores (1-4), 0 = parse in the ingesting process --
    parse_workers: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = "auto"


class RerankGateSettings(_Section):
    """When the fused ranking is ambiguous enough to rerank (``retrieval/rerank.py``,
    ``RerankGate``): any one condition applies it. Thresholds are on the fusion's scale: the
    weighted fusion's scores lie in [0, 1]; with ``rrf`` a margin is ~0.0003 (set
    ``margin_below`` near 0.0002 there, or every question is reranked). The defaults skip 34 %
    of SciFact and 83 % of XQuAD-en questions, sending those whose fused top hit is most often
    wrong (``bench/rerank_gate.py``; docs/benchmarks.md, "Issue 15: conditional reranking")."""

    margin_below: float = Field(default=0.1, ge=0)  # top-1 minus top-2 fused score below this
    on_disagreement: bool = True  # the keyword and dense top hits are different chunks
    top_score_below: float | None = Field(default=None, ge=0)  # the top fused score below this


class RerankSettings(_Section):
    """The optional remote reranker (issue 15; ``gateway/providers/rerank_http.py``), applied
    only when ``gate`` finds the fused ranking ambiguous (or ``always``). Off by default: no
    reranker model ships with ragkeel. A failure or an open breaker keeps the fused order."""

    provider: Literal["none", "remote"] = "none"
    shape: Literal["cohere", "jina", "tei"] = "cohere"  # the request and response spoken
    url: str | None = None  # the endpoint itself: https://api.cohere.com/v2/rerank, .../rerank
    model: str = ""  # the server's model name (cohere and jina need one; tei serves one)
    api_key: SecretStr | None = None
    candidates: int = Field(default=20, ge=2, le=1000)  # the top fused hits sent to it
    top_n: int | None = Field(default=None, ge=1)  # results asked back (None: every candidate)
    timeout_s: float = Field(default=2.0, gt=0)  # per attempt
    deadline_s: float = Field(default=4.0, gt=0)  # every attempt and backoff together
    max_retries: int = Field(default=1, ge=0, le=10)  # gateway.retry's backoff, this many
    gate: RerankGateSettings = RerankGateSettings()
    always: bool = False  # rerank every question, ambiguous or not

    @model_validator(mode="after")
    def _remote_needs_url_and_model(self) -> RerankSettings:
        if self.provider == "remote" and not self.url:
            raise ValueError("retrieval.rerank.provider remote needs retrieval.rerank.url")
        if self.provider == "remote" and self.shape != "tei" and not self.model:
            raise ValueError(f"retrieval.rerank.shape {self.shape} needs retrieval.rerank.model")
        return self


class RetrievalSettings(_Section):
    mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    k: int = Field(default=10, ge=1, le=1000)
    candidates: int = Field(default=100, ge=1, le=10_000)  # per retriever, before fusion
    fusion: Literal["rrf", "weighted", "dbsf"] = "weighted"
    rrf_k: int = Field(default=60, ge=1)
    keyword_weight: float = Field(default=0.5, ge=0.0)
    dense_weight: float = Field(default=0.5, ge=0.0)
    bm25_k1: float = Field(default=1.2, gt=0.0)
    bm25_b: float = Field(default=0.75, ge=0.0, le=1.0)
    rerank: RerankSettings = RerankSettings()  # issue 15: off unless provider: remote
    # issue 15: the keyword analyzer's language (stemmer + stop words) of NEW collections; a
    # collection keeps the language it was created with and queries use the collection's
    # (`ragkeel ingest --language`, `ragkeel collections reindex --language`)
    language: str = DEFAULT_LANGUAGE

    @field_validator("language", mode="after")
    @classmethod
    def _known_language(cls, value: str) -> str:
        try:
            return check_language(value)
        except LanguageError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _weights_not_both_zero(self) -> RetrievalSettings:
        if self.keyword_weight == 0 and self.dense_weight == 0:
            raise ValueError("keyword_weight and dense_weight cannot both be 0")
        return self


class LocalModelSettings(_Section):
    model: Literal["qwen2.5-coder-1.5b-instruct-q4_k_m", "qwen2.5-coder-0.5b-instruct-q4_k_m"] = (
        "qwen2.5-coder-1.5b-instruct-q4_k_m"
    )
    n_ctx: int = Field(default=4096, ge=512, le=32768)
    threads: int = Field(default=0, ge=0)  # 0 = llama.cpp's default (one per core)
    models_dir: Path | None = None  # deprecated: use models.dir (this still wins when set)
    # one answer generates at a time; this many more may wait for their turn (within the request
    # deadline); past it the API answers 503 MODEL_BUSY with Retry-After at once
    max_queue: int = Field(default=2, ge=0, le=1000)
    # issue 13: the model served once by `ragkeel model-server` (an OpenAI-compatible URL, e.g.
    # http://127.0.0.1:8090/v1): every replica reaches it through the gateway as the deployment
    # "local" instead of loading its own copy (~0.9 GB each); None: loaded in this process
    base_url: str | None = None
    # issue 14: read the answer prompt's fixed prefix (system message) into the KV cache at load
    # and put it back when another prompt overwrote it, so no question waits for it
    warm_prefix: bool = True
    # issue 14: a cheap local tier. Set, the gateway's router (gateway.routing's thresholds, not
    # its `enabled`) sends confident single-fact questions to this model and the rest to `model`;
    # both share one generation slot and queue. ~0.4 GB more. None (default): `model` answers
    # everything — off: the paired quality comparison (docs/benchmarks.md, 'context packing')
    # found answers containing the reference 15-31 points less often on the questions it took
    cheap_model: Literal["qwen2.5-coder-0.5b-instruct-q4_k_m"] | None = None
    # issue 15: your own GGUF file instead of `model` (the chat template from its metadata),
    # named by its file stem in traces, served_by and the price table (free: a local model);
    # `sha256` pins it: checked before every load (the hash is remembered by size and mtime)
    model_path: Path | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @property
    def name(self) -> str:
        """What the local model answers as: ``model_path``'s file stem, else ``model``."""
        return self.model_path.stem if self.model_path is not None else self.model

    @field_validator("model_path", mode="after")
    @classmethod
    def _absolute_path(cls, value: Path | None) -> Path | None:
        # absolute, not resolved: a symlink keeps its own name (the model's name)
        return value.expanduser().absolute() if value is not None else None

    @field_validator("sha256", mode="after")
    @classmethod
    def _lower_hex(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @model_validator(mode="after")
    def _pin_needs_a_path(self) -> LocalModelSettings:
        if self.sha256 is not None and self.model_path is None:
            raise ValueError(
                "sha256 pins generation.local.model_path: set model_path too (the pinned "
                "models carry their own sha256)"
            )
        return self

    @field_validator("models_dir", mode="after")
    @classmethod
    def _models_dir_is_deprecated(cls, value: Path | None) -> Path | None:
        if value is not None:
            warnings.warn(
                "generation.local.models_dir is deprecated: set models.dir "
                "(RAGKEEL_MODELS__DIR) instead; models are shared by every RAGKEEL_HOME",
                DeprecationWarning,
                stacklevel=2,
            )
        return value


class ModelsSettings(_Section):
    """Where the pinned model files live: one user-level directory shared by every home
    (``ragkeel.models.cache``; ``make setup`` installs there)."""

    dir: Path | None = None  # default: $XDG_CACHE_HOME/ragkeel/models or ~/.cache/ragkeel/models

    @field_validator("dir", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None


class OpenAIChatSettings(_Section):
    """Any OpenAI-compatible chat endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp server...)."""

    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0)


class PriceSettings(_Section):
    input_per_mtok: float = Field(ge=0)  # USD per million prompt tokens
    output_per_mtok: float = Field(ge=0)  # USD per million completion tokens


class AnswerSafetySettings(_Section):
    """Output checks on generated answers (``generation/safety.py``, issue 11)."""

    output_checks: bool = True  # strip foreign links and images, drop answers with the canary
    canary: SecretStr | None = None  # the system prompt's marker; None: a fresh one per process
    allowed_link_hosts: list[str] = Field(default_factory=list)  # links/images always kept


class PackingSettings(_Section):
    """How the retrieved chunks become the prompt's sources (issue 14, generation/context.py):
    whole ``chunks``, or the ``sentences`` of them that matter for the question (at most
    ``max_sentences`` per source, ``neighbours`` either side of a chosen one, chosen when they
    score at least ``min_relative`` of the best sentence)."""

    mode: Literal["chunks", "sentences"] = "chunks"
    max_sentences: int = Field(default=6, ge=1, le=100)
    neighbours: int = Field(default=1, ge=0, le=10)
    min_relative: float = Field(default=0.25, ge=0.0, le=1.0)


class CondenseSettings(_Section):
    """Multi-turn questions (issue 15, generation/condense.py): a follow-up made standalone from
    the conversation before retrieval. ``auto``: the model on the gateway's cheap route when a
    model answers (else the rules, which also stand in when the model fails); ``model``: the
    model even for extractive answers; ``rules``: never a model; ``off``: the last message as
    it is. ``max_turns`` earlier turns are read (each cut to ``max_turn_chars`` for the model);
    the model writes at most ``max_tokens`` within ``timeout_s``."""

    mode: Literal["auto", "model", "rules", "off"] = "auto"
    max_turns: int = Field(default=6, ge=1, le=50)
    max_turn_chars: int = Field(default=600, ge=50, le=10_000)
    max_tokens: int = Field(default=96, ge=16, le=1024)
    timeout_s: float = Field(default=20.0, gt=0, le=600)
    prompt: str = "condense_v1"  # generation/prompts/condense/<prompt>.yaml

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML reads a bare `off` as false


class GenerationSettings(_Section):
    provider: Literal["local", "openai", "none"] = "local"  # none: extractive answers only
    mode: Literal["generative", "extractive"] = "generative"
    k: int = Field(default=8, ge=1, le=100)  # hits retrieved for the context
    gate_threshold: float = Field(
        default=0.34, ge=-1.0, le=1.0
    )  # top dense cosine; bench/gate_sweep.py
    gate_keyword_threshold: float | None = Field(default=None, ge=0.0)
    context_budget: int = Field(default=1000, ge=128, le=32768)  # prompt tokens
    max_answer_tokens: int = Field(default=256, ge=1, le=8192)
    # v3: sources as tagged data, an instruction hierarchy, a canary (issue 11; v2 grounded 0.79
    # of clean answers, v3 0.93, gold answers 0.68 / 0.73: docs/benchmarks.md, prompt injection)
    template_version: str = "answer_v3"
    model_timeout_s: float = Field(default=60.0, gt=0)
    min_support: float = Field(default=0.5, ge=0.0, le=1.0)
    extractive_sentences: int = Field(default=3, ge=1, le=20)
    packing: PackingSettings = PackingSettings()  # issue 14: whole chunks or sentences
    condense: CondenseSettings = CondenseSettings()  # issue 15: multi-turn questions
    safety: AnswerSafetySettings = AnswerSafetySettings()
    # a generated answer the citation check finds unsupported: returned as_is, stripped of the
    # unsupported sentences, or replaced by the extractive answer (generation/ungrounded.py);
    # as_is measured best or tied under answer_v3 (docs/benchmarks.md, prompt injection; and the
    # paired harness runs evals/ungrounded-*.yaml, "the ungrounded policy")
    ungrounded: Literal["as_is", "strip", "extractive"] = "as_is"
    local: LocalModelSettings = LocalModelSettings()
    openai: OpenAIChatSettings = OpenAIChatSettings()
    prices: dict[str, PriceSettings] = Field(default_factory=dict)  # model -> price; local = 0


class DeploymentSettings(_Section):
    """One remote model deployment behind the gateway (an entry of ``gateway.deployments``)."""

    name: str = Field(min_length=1)  # unique: keys the breaker, the ledger and the trace
    provider: Literal["openai", "anthropic"] = "openai"  # openai: any OpenAI-compatible API
    model: str = Field(min_length=1)  # the provider's model name (also the price table key)
    base_url: str | None = None  # default: api.openai.com/v1 or api.anthropic.com
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)  # bounds every attempt on this deployment
    # (also below generation.model_timeout_s: the smallest of the two, attempt_timeout_s and the
    # deadline left applies)
    tier: Literal["cheap", "strong"] = "strong"  # which route uses it (gateway.routing)


class RetrySettings(_Section):
    max_retries: int = Field(default=2, ge=0, le=10)
    base_delay_s: float = Field(default=0.25, ge=0)
    max_delay_s: float = Field(default=8.0, ge=0)
    max_retry_after_s: float = Field(default=10.0, ge=0)  # longer: fall back instead of waiting
    fallback_patience_s: float = Field(default=1.0, ge=0)  # with a rung left: Retry-After slept
    # in total per request and deployment; longer -> the next rung at once (gateway/retry.py)
    budget_ratio: float = Field(default=0.2, ge=0, le=10)  # retries <= ratio x requests ...
    budget_window_s: float = Field(default=10.0, gt=0)  # ... over this sliding window
    budget_min_retries: int = Field(default=3, ge=0)  # floor so a quiet service can retry
    min_attempt_s: float = Field(default=0.05, gt=0)  # no attempt starts with less time left


class BreakerSettings(_Section):
    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    min_calls: int = Field(default=20, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    open_s: float = Field(default=30.0, gt=0)
    max_open_s: float = Field(default=300.0, gt=0)
    probe_lease_s: float = Field(default=120.0, gt=0)  # a probe that never reports frees its slot

    @model_validator(mode="after")
    def _open_within_max(self) -> BreakerSettings:
        if self.max_open_s < self.open_s:
            raise ValueError("max_open_s must be at least open_s")
        return self


class LimitSettings(_Section):
    """Admission at the API edge, before retrieval or any provider call (None = no limit)."""

    requests_per_minute: int | None = Field(default=None, ge=1)  # per tenant
    tokens_per_minute: int | None = Field(default=None, ge=1)  # per tenant
    cost_per_day: float | None = Field(default=None, ge=0)  # USD per tenant
    max_in_flight: int = Field(default=16, ge=1)  # answers generated at once; excess -> 429


class BudgetSettings(_Section):
    max_cost: float | None = Field(default=None, ge=0)  # USD per request unless it says less
    max_tokens: int | None = Field(default=None, ge=1)  # prompt + completion per request
    min_answer_tokens: int = Field(default=64, ge=1)  # degrade max_tokens no lower than this


class RoutingSettings(_Section):
    enabled: bool = False  # False: every request goes down the one chain of deployments
    cheap_min_top_score: float = Field(default=0.55, ge=-1, le=1)
    cheap_min_margin: float = Field(default=0.05, ge=0)  # fused-score gap: fits weighted fusion;
    # with rrf, gaps are ~0.0003 (set it near 0.0002 there, or every question goes strong)
    strong_min_question_tokens: int = Field(default=40, ge=1)
    max_question_marks: int = Field(default=1, ge=1)  # more: a multi-part question -> strong
    multi_part_markers: tuple[str, ...] | None = None  # None: gateway.router's defaults
    default: Literal["cheap", "strong"] = "strong"


class GatewaySettings(_Section):
    """How model calls are made. With no ``deployments`` the chain is the one model chosen by
    ``generation.provider``. With deployments: they are tried in order (per route when routing
    is on), then the local model (``fallback_to_local``), then the extractive answer."""

    deployments: list[DeploymentSettings] = Field(default_factory=list)
    fallback_to_local: bool = False
    continue_interrupted: bool = True  # a stream broken mid-answer continues on the next rung
    request_deadline_s: float = Field(default=120.0, gt=0)  # all attempts and fallbacks
    attempt_timeout_s: float | None = Field(default=None, gt=0)  # caps every deployment's own
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    limits: LimitSettings = LimitSettings()
    budget: BudgetSettings = BudgetSettings()
    routing: RoutingSettings = RoutingSettings()

    @model_validator(mode="after")
    def _unique_names(self) -> GatewaySettings:
        names = [d.name for d in self.deployments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"deployment names must be unique; repeated: {duplicates}")
        return self


class ApiLimitSettings(_Section):
    """Bounds on what one request or caller may consume at the HTTP edge (issue 11)."""

    max_body_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)  # past it: 413, unread
    max_question_chars: int = Field(default=4_000, ge=1, le=1_000_000)  # past it: 422

    # streamed answers (query or chat with "stream": true) open at once per admission tenant;
    # past it: 429 TOO_MANY_STREAMS. The global cap is gateway.limits.max_in_flight.
    max_streams_per_tenant: int = Field(default=4, ge=1, le=10_000)


class OtlpSettings(_Section):
    """``observability.otlp``: OpenTelemetry spans exported over OTLP/HTTP (``observability/
    otel.py``; needs the ``otel`` extra). No endpoint: off, and the SDK is never imported."""

    # the collector's traces URL, e.g. http://127.0.0.1:6006/v1/traces (Phoenix); None: off
    endpoint: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # e.g. Authorization (masked)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)  # share of new traces kept
    service_name: str = Field(default="ragkeel", min_length=1)  # also Phoenix's project name
    timeout_s: float = Field(default=10.0, gt=0, le=300)  # one export, retries included
    max_queue_size: int = Field(default=2048, ge=1, le=1_000_000)  # spans; full: dropped
    capture_content: bool = True  # question, documents, prompt and answer texts on spans

    @field_validator("endpoint", mode="after")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("the OTLP endpoint is an http:// or https:// URL (.../v1/traces)")
        return value


class ObservabilitySettings(_Section):
    enabled: bool = True  # record a trace for every ask / query / chat request
    trace_store: Path | None = None  # default: $RAGKEEL_HOME/traces.db
    keep_prompt_text: bool = True  # False: keep only the prompt's sha256 and size
    otlp: OtlpSettings = Field(default_factory=OtlpSettings)  # OpenTelemetry export (issue 12)
    # trace retention (issue 12), enforced by a background sweep (observability/trace_store.py)
    retention_days: float = Field(default=30.0, ge=0)  # older traces are deleted; 0: keep all
    max_db_mb: float = Field(default=512.0, ge=0)  # live data cap, oldest out first; 0: none
    retention_interval_s: float = Field(default=60.0, gt=0, le=86_400)  # how often it runs
    # -- metrics and logs (issue 12: observability/metrics.py, observability/logs.py) --
    # GET /metrics: auto = the operator's key (admin + trusted proxy) when api.auth requires
    # keys (open when it does not);
    # public = no key ever (a scraper on a private network); off = not served
    metrics: Literal["auto", "public", "off"] = "auto"
    # log lines: json (one object a line, with the trace id; `serve`'s default) or text
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_questions: bool = False  # whether log lines may carry the question text


# -- monitor (issue 12: alerts over rolling windows of the trace store) --


class MonitorRuleSettings(_Section):
    """The alert rules' thresholds (None: that rule is off). ``observability/monitor/rules.py``
    says what each one measures; the drift tests' thresholds are argued there too."""

    p95_latency_ms: float | None = Field(default=20_000.0, gt=0)  # total latency, current window
    latency_regression_ratio: float | None = Field(default=1.5, gt=1)  # p95 now / p95 reference
    error_share: float | None = Field(default=0.05, gt=0, le=1)  # outcome error
    degraded_share: float | None = Field(default=0.25, gt=0, le=1)  # outcome degraded
    abstention_rate: float | None = Field(default=0.5, gt=0, le=1)  # outcome cannot_answer
    cost_per_answer_usd: float | None = Field(default=None, gt=0)  # window cost / answered
    cost_spike_ratio: float | None = Field(default=2.0, gt=1)  # cost per answer now / reference
    spend_per_day_usd: float | None = Field(default=None, gt=0)  # the cost ledger, UTC today
    # quality drift: top retrieval scores (two-sample KS) and grounded share (Fisher's exact)
    score_drift: bool = True
    drift_p_value: float = Field(default=0.001, gt=0, lt=1)  # significance of both tests
    drift_min_ks: float = Field(default=0.2, gt=0, le=1)  # and an effect this large (KS D)
    grounded_drift: bool = True
    grounded_min_drop: float = Field(default=0.15, gt=0, le=1)  # share points lost, and p above


class MonitorWebhookSettings(_Section):
    """Where alerts are POSTed as JSON (firing and resolved); the URL and headers are secrets
    (a chat webhook URL is its own credential)."""

    url: SecretStr | None = None  # None: alerts are logged (and shown), not sent
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # e.g. Authorization
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    max_attempts: int = Field(default=5, ge=1, le=20)  # retried on network errors, 429, 5xx
    backoff_base_s: float = Field(default=1.0, ge=0)  # full jitter (http_retry.Backoff)
    backoff_max_s: float = Field(default=30.0, ge=0)

    @field_validator("url", mode="after")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("the webhook url must start with http:// or https://")
        return value


class MonitorSettings(_Section):
    """``ragkeel serve`` evaluates the rules every ``interval_s`` in a background thread;
    ``ragkeel monitor check`` once. Windows end now: the current one is ``window_s`` long, the
    reference the ``reference_window_s`` before it."""

    enabled: bool = True  # the background thread in serve (monitor check works either way)
    interval_s: float = Field(default=60.0, ge=1, le=86_400)
    window_s: float = Field(default=3_600.0, ge=60)
    reference_window_s: float = Field(default=86_400.0, ge=60)
    min_samples: int = Field(default=30, ge=5)  # fewer requests in a window: the rule says no_data
    max_samples: int = Field(default=50_000, ge=100)  # newest traces read per window
    fire_after: int = Field(default=1, ge=1, le=100)  # consecutive breaching evaluations
    resolve_after: int = Field(default=3, ge=1, le=100)  # consecutive clear ones (no flapping)
    rules: MonitorRuleSettings = MonitorRuleSettings()
    webhook: MonitorWebhookSettings = MonitorWebhookSettings()


class UiSettings(_Section):
    """The dashboard under ``/ui`` (issue 12; ``ui/`` says what each value does)."""

    enabled: bool = True  # serve /ui from `ragkeel serve`
    # a browser's sign-in (api.auth required) lasts this long; the cookie is not the key
    session_ttl_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    reports_dir: Path | None = None  # evaluation reports listed; default: $RAGKEEL_HOME/results


class ServerSettings(_Section):
    """``ragkeel serve``."""

    # on SIGTERM: refuse new answers at once, let running ones finish for this long, then end
    # the streams still open with a terminal SHUTTING_DOWN error event and exit
    drain_s: float = Field(default=10.0, ge=0, le=3600)
    # issue 12/13: worker processes behind the one port (`serve --workers N`); each loads its own
    # copy of everything, the local model included (generation.local.base_url shares one)
    workers: int = Field(default=1, ge=1, le=64)


class ApiSettings(_Section):
    """Who may reach the HTTP API (issue 11; ``identity/edge.py`` says what each value does)."""

    # required | off | auto: required when `serve` binds a non-loopback address, off on loopback
    auth: Literal["auto", "required", "off"] = "auto"
    docs: Literal["auto", "public", "off"] = "auto"  # /docs, /openapi.json; auto: iff auth is off
    cors_origins: list[str] = Field(default_factory=list)  # explicit origins only; none: no CORS
    keys_path: Path | None = None  # default: $RAGKEEL_HOME/keys.db

    @field_validator("cors_origins", mode="after")
    @classmethod
    def _explicit_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            scheme, sep, rest = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest or "*" in rest:
                raise ValueError(
                    f"{origin!r} is not an explicit origin: write scheme://host[:port], "
                    "e.g. https://app.example.com (no wildcard, no path)"
                )
        return value


class RedisSettings(_Section):
    """``redis`` (issue 13): one Redis for the state several replicas share — rate limits, circuit
    breakers, daily cost accounts (``shared_state.py`` says what each does when Redis cannot be
    reached). No ``url``: everything stays in-process, as on one machine; needs the ``scale``
    extra when set."""

    # redis://[:password@]host:port/db, rediss://... or unix:///path.sock (masked);
    # RAGKEEL_REDIS__URL
    url: SecretStr | None = None
    key_prefix: str = Field(default="ragkeel:", min_length=1, max_length=64)  # every key starts so
    socket_timeout_s: float = Field(default=0.5, gt=0, le=30)  # one command
    connect_timeout_s: float = Field(default=0.5, gt=0, le=30)
    retry_after_failure_s: float = Field(default=1.0, ge=0, le=300)  # Redis not asked meanwhile
    reservation_lease_s: float = Field(default=900.0, ge=10)  # an unsettled reservation lapses

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        schemes = ("redis://", "rediss://", "unix://")
        if value is not None and not value.get_secret_value().startswith(schemes):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class CacheSettings(_Section):
    """``cache`` (issue 14): the answer cache (``caching/``). A question asked again — same
    normalised text, same caller scope, same collections at the same revision, same settings
    — is answered from the stored answer with no retrieval and no model call. ``backend``:
    ``auto`` is Redis when ``redis.url`` is set (shared by replicas), else SQLite
    (``answer-cache.db`` in the home), each behind an in-process LRU of ``memory_entries``;
    ``memory`` keeps answers in this process only. Requests opt out with ``"cache": false``
    or ``Cache-Control: no-cache`` (the fresh answer replaces the stored one) or ``no-store``
    (nothing read or kept). ``semantic``: also serve a stored answer to a similar question
    (``semantic_threshold``: cosine, None: the matcher's tuned default)."""

    enabled: bool = True
    backend: Literal["auto", "memory", "sqlite", "redis"] = "auto"
    ttl_s: float = Field(default=86_400.0, gt=0)  # an answer is kept at most this long
    max_entries: int = Field(default=10_000, ge=1)  # answers kept (SQLite/Redis), LRU beyond
    memory_entries: int = Field(default=1_000, ge=1)  # the in-process LRU in front
    semantic: bool = False
    semantic_threshold: float | None = Field(default=None, gt=0, le=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAGKEEL_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Path(".ragkeel")
    storage: StorageSettings = StorageSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    ingestion: IngestionSettings = IngestionSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationSettings = GenerationSettings()
    gateway: GatewaySettings = GatewaySettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    server: ServerSettings = ServerSettings()
    api_limits: ApiLimitSettings = ApiLimitSettings()
    models: ModelsSettings = ModelsSettings()
    api: ApiSettings = ApiSettings()
    monitor: MonitorSettings = MonitorSettings()  # alert rules (issue 12)
    ui: UiSettings = UiSettings()  # the dashboard (issue 12)
    redis: RedisSettings = RedisSettings()  # shared state for replicas (issue 13)
    cache: CacheSettings = CacheSettings()  # the answer cache (issue 14)

    @model_validator(mode="after")
    def _bm25_answers_need_a_keyword_gate(self) -> Settings:
        gen = self.generation
        if self.retrieval.mode == "bm25" and gen.gate_keyword_threshold is None:
            raise ValueError(
                "retrieval.mode bm25 leaves the answer gate no dense score to check: set "
                "generation.gate_keyword_threshold (a BM25 score) too"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def database_path(self) -> Path:
        return self.storage.path or (self.home / "ragkeel.db")

    @property
    def trace_store_path(self) -> Path:
        return self.observability.trace_store or (self.home / "traces.db")

    @property
    def models_dir(self) -> Path:
        """The models directory: the deprecated ``generation.local.models_dir`` if set, else
        ``models.dir``, else the user-level default (``ragkeel.models.cache``)."""
        return self.generation.local.models_dir or self.models.dir or default_models_dir()

    @property
    def cost_ledger_path(self) -> Path:
        return self.home / "costs.db"

    @property
    def keys_path(self) -> Path:
        return self.api.keys_path or (self.home / "keys.db")

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets shown as ``**********``: the secret
        fields, and credentials embedded in any URL (``http://user:**********@host``)."""
        data: dict[str, Any] = masked_value(self.model_dump(mode="json"))
        data["storage"]["path"] = str(self.database_path)
        data["observability"]["trace_store"] = str(self.trace_store_path)
        data["models"]["dir"] = str(self.models_dir)
        data["api"]["keys_path"] = str(self.keys_path)
        return data


class _YamlSource(PydanticBaseSettingsSource):
    """Reads ``ragkeel.yaml`` (or ``$RAGKEEL_CONFIG``). A missing default file is fine; a missing
    explicit file, or one that is not a YAML mapping, is a ``ConfigError``."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.data = _read_yaml_config()

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def _read_yaml_config() -> dict[str, Any]:
    explicit = os.environ.get("RAGKEEL_CONFIG")
    path = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist", hint="fix RAGKEEL_CONFIG")
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    expanded: dict[str, Any] = expand(loaded)  # ${VAR} references (env_refs)
    return expanded


def _quoted_input(err: Any) -> str:
    """What a configuration error quotes of the value it refused: never a secret (a
    secret-named key, credentials in a URL, a section's secret members), nothing for an
    unknown key (a misspelt ``api_key`` holds one), a section only by its keys."""
    value, name = err.get("input"), str(err["loc"][-1]) if err["loc"] else ""
    if isinstance(value, dict):
        return f" (got a section with keys {sorted(map(str, value))})"
    if err.get("type") == "extra_forbidden":
        return ""
    if err.get("type") in ("model_type", "model_attributes_type", "dict_type"):
        return f" (got a {type(value).__name__}, not a section)"  # e.g. a key one level up
    return f" (got {masked_value(value, name)!r})"


def load_settings(**overrides: Any) -> Settings:
    """Build and validate the one ``Settings``; raise ``ConfigError`` naming key and value.
    ``${VAR}`` references in ``overrides``' strings are resolved first (``env_refs``)."""
    try:
        return Settings(**expand(overrides))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<root>"
            problems.append(f"{key}: {err['msg']}{_quoted_input(err)}")
        raise ConfigError(
            "invalid configuration: " + "; ".join(problems),
            hint="check ragkeel.yaml and RAGKEEL_* environment variables",
        ) from exc
