"""Wiring: builds every component from one ``Settings``. The only place that knows which
backend implements which protocol. Components are created lazily: ``config show`` needs no
database, ``search --mode bm25`` needs no embedding model.

**The only reader of ``Settings``.** Everything else gets what it needs from here:

- Lower layers (gateway, embeddings, ingestion, retrieval, generation, storage, observability,
  admission) take plain values as constructor arguments, or at most *their own section* of the
  settings passed in by the container (``build_gateway(settings.gateway, deployments, ...)``,
  ``build_embedder(settings.embedding, models_dir=..., cache_dir=...)``,
  ``ParseLimits.from_settings(settings.ingestion)``, ``RemoteEmbedder.from_settings(...)``).
  They may import a section class (``GatewaySettings``, ``EmbeddingSettings``...) from
  ``ragkeel.settings`` for its type and defaults; they never import ``Settings`` or
  ``load_settings``, and never hold the whole settings.
- Choices that span sections are made here, not in the component: which deployments the gateway
  chains (``deployments_of``), whether there is a gateway at all (``generation.provider: none``),
  whether the local model is wanted, which admission gates exist.
- The edges (``api/``, ``cli/``) read plain values from the container's properties
  (``home``, ``uploads_dir``, ``keep_prompt_text``, ``request_deadline_s``, ``search_k``...), not
  ``container.settings``. A CLI command opens one container, once: ``with Container.load() as c:``
  (``load`` reads ``ragkeel.yaml`` and ``RAGKEEL_*``); ``ragkeel serve`` hands it to the app,
  whose lifespan closes it. ``ragkeel config show`` alone prints the settings themselves.
- The evaluation harness gets ``Container`` as its ``build`` callable (evaluation sits below the
  container in the layer order): one container per run, built from the run's settings, which
  the eval config embeds (``evaluation/run/config.py``).

``tests/test_wiring_root.py`` fails when a module outside this list starts reading ``Settings``
(``docs/architecture.md``, "Wiring root", says what else may keep a look at them and why).
"""

from __future__ import annotations

import logging
from functools import cached_property, partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self, get_args

from ragkeel.admission.accounts import Accounts, CostAccounts
from ragkeel.admission.gates import Admission
from ragkeel.admission.load_shedder import LoadShedder
from ragkeel.admission.request_limits import Limits
from ragkeel.admission.stream_limits import StreamLimiter
from ragkeel.admission.tenant_limits import TenantLimiter, TenantLimits, shared_storage
from ragkeel.caching.answers import AnswerCache, SemanticLookup
from ragkeel.caching.backends import CacheBackend, MemoryCache, TieredCache
from ragkeel.caching.keys import fingerprint
from ragkeel.caching.semantic import DEFAULT_SIMILARITY_THRESHOLD, SemanticMatcher
from ragkeel.caching.semantic_index import SemanticIndex
from ragkeel.caching.sqlite_backend import SqliteCache
from ragkeel.clock import WALL_CLOCK
from ragkeel.embeddings import build_embedder
from ragkeel.embeddings.base import Embedder
from ragkeel.embeddings.cache import CachingEmbedder
from ragkeel.errors import ConfigError
from ragkeel.gateway.base import ChatMessage, ChatModel
from ragkeel.gateway.breaker_store import SnapshotState
from ragkeel.gateway.pricing import Price, PriceTable
from ragkeel.gateway.providers.local import GenerationQueue, LocalChatModel
from ragkeel.gateway.stack import GatewayStack, RerankStack, build_gateway, build_reranker
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.condense import Condenser, ModelCondenser
from ragkeel.generation.condense_rules import RuleCondenser, on_topic
from ragkeel.generation.context import Packing
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.generation.safety import OutputGuard, mask_canaries, new_canary
from ragkeel.http_retry import Backoff
from ragkeel.identity.edge import EdgePolicy
from ragkeel.identity.keys import SqliteKeyStore
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.parallel import auto_parse_workers
from ragkeel.ingestion.parsers import ParseLimits
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.jobs.model import JobQueue
from ragkeel.models.gguf import STAMPS, GgufFile, get_model, model_path, own_file, pinned_file
from ragkeel.observability.cost_ledger import SqliteCostLedger
from ragkeel.observability.feedback import SqliteFeedbackStore
from ragkeel.observability.logs import LogFormat
from ragkeel.observability.metrics import Metrics, Reading, ScrapeGauge
from ragkeel.observability.monitor import Monitor, TraceWindows, WebhookNotifier
from ragkeel.observability.monitor.gauge import GAUGE as ALERT_GAUGE
from ragkeel.observability.monitor.gauge import HELP as ALERT_HELP
from ragkeel.observability.monitor.gauge import LABELS as ALERT_LABELS
from ragkeel.observability.monitor.gauge import alert_readings
from ragkeel.observability.monitor.lease import FileLease
from ragkeel.observability.monitor.monitor import ledger_spend
from ragkeel.observability.trace_store import (
    NullTraceStore,
    Retention,
    SqliteTraceStore,
    TraceStore,
)
from ragkeel.observability.tracing import NullTracer, Tracer
from ragkeel.retrieval.hybrid import HybridRetriever, Mode
from ragkeel.retrieval.rerank import ConditionalReranker, RerankGate
from ragkeel.settings import (
    DeploymentSettings,
    LocalModelSettings,
    Settings,
    UiSettings,
    load_settings,
)
from ragkeel.shared_state import Outage, SharedState, Use, connect
from ragkeel.storage.base import ManagedStore
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import AccessScope

_log = logging.getLogger(__name__)
LOCAL_DEPLOYMENT = "local"  # the shared model server's deployment name (issue 13)


def served_local_model(settings: Settings) -> DeploymentSettings | None:
    """The local model reached at ``generation.local.base_url`` (``ragkeel model-server``) as an
    OpenAI-compatible deployment named ``local``, when that URL is set and the local model is
    wanted (``generation.provider: local`` or ``gateway.fallback_to_local``); else None."""
    gen = settings.generation
    wanted = gen.provider == "local" or settings.gateway.fallback_to_local
    if gen.local.base_url is None or not wanted:
        return None
    return DeploymentSettings(
        name=LOCAL_DEPLOYMENT,
        provider="openai",
        model=gen.local.name,  # the served model's alias (model-server: the same name)
        base_url=gen.local.base_url,
        timeout_s=gen.model_timeout_s,
    )


def deployments_of(settings: Settings) -> list[DeploymentSettings]:
    """``gateway.deployments``, or the one remote model ``generation.provider`` names; the
    shared local model server (``served_local_model``) last: the primary model when
    ``generation.provider`` is ``local``, the last rung when ``gateway.fallback_to_local``."""
    served = served_local_model(settings)
    tail = [served] if served is not None else []
    if settings.gateway.deployments:
        return [*settings.gateway.deployments, *tail]
    gen = settings.generation
    if gen.provider != "openai":
        return tail
    return [
        DeploymentSettings(
            name=gen.openai.model,
            provider="openai",
            model=gen.openai.model,
            base_url=gen.openai.base_url,
            api_key=gen.openai.api_key,
            timeout_s=gen.openai.timeout_s,
        ),
        *tail,
    ]


class Container:
    """Every component, built lazily from ``settings``; a context manager that closes what it
    built (``with Container(settings) as c:``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def load(cls, **overrides: Any) -> Container:
        """A container over ``load_settings(**overrides)``: ``ragkeel.yaml``, ``RAGKEEL_*``
        variables and defaults (how each CLI command opens its one container)."""
        return cls(load_settings(**overrides))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plain values the edges need (they do not read the settings themselves) --

    @property
    def home(self) -> Path:
        """``RAGKEEL_HOME``: the database, traces, caches, uploads."""
        return self.settings.home

    @property
    def uploads_dir(self) -> Path:
        """Where the API keeps uploaded files (``api/uploads.py``)."""
        return self.settings.home / "uploads"

    @property
    def models_dir(self) -> Path:
        """The user-level directory of model files (``models/cache.py``)."""
        return self.settings.models_dir

    @property
    def cost_ledger_path(self) -> Path:
        return self.settings.cost_ledger_path

    @property
    def tracing_enabled(self) -> bool:
        """``observability.enabled`` (off: ``traces`` is a store that keeps nothing)."""
        return self.settings.observability.enabled

    @property
    def keep_prompt_text(self) -> bool:
        """Whether a trace keeps the prompt's text (``observability.keep_prompt_text``)."""
        return self.settings.observability.keep_prompt_text

    @property
    def request_deadline_s(self) -> float:
        """How long one answer may take end to end (``gateway.request_deadline_s``)."""
        return self.settings.gateway.request_deadline_s

    @property
    def fallback_to_local(self) -> bool:
        """Whether the in-process local model is the gateway's last rung
        (``gateway.fallback_to_local``; not when ``generation.local.base_url`` serves it)."""
        s = self.settings
        return s.gateway.fallback_to_local and served_local_model(s) is None

    @property
    def search_k(self) -> int:
        """Hits a search returns when the caller does not say (``retrieval.k``)."""
        return self.settings.retrieval.k

    @property
    def search_mode(self) -> Mode:
        """The search mode when the caller does not say (``retrieval.mode``)."""
        return self.settings.retrieval.mode

    @property
    def drain_s(self) -> float:
        """How long running answers get to finish at shutdown (``server.drain_s``)."""
        return self.settings.server.drain_s

    @property
    def workers(self) -> int:
        """Worker processes ``serve`` runs behind its port (``server.workers``)."""
        return self.settings.server.workers

    def settings_snapshot(self) -> dict[str, Any]:
        """The effective settings, secrets masked (pinned in results files)."""
        return self.settings.masked()

    # -- components --

    @cached_property
    def store(self) -> ManagedStore:
        """``storage.backend``: the SQLite file (default) or PostgreSQL (issue 13; the driver
        is imported only then)."""
        s = self.settings
        if s.storage.backend == "postgres":
            from ragkeel.storage.postgres import PostgresDocumentStore

            pg = s.storage.postgres
            assert pg.url is not None  # the settings refuse postgres without a url
            return PostgresDocumentStore(
                pg.url.get_secret_value(),
                pool_size=pg.pool_size,
                bm25_k1=s.retrieval.bm25_k1,
                bm25_b=s.retrieval.bm25_b,
                hnsw_ef_search=pg.hnsw_ef_search,
                exact_search_max_rows=pg.exact_search_max_rows,
                migrate_on_start=pg.migrate_on_start,
            )
        return SqliteDocumentStore(
            s.database_path,
            bm25_k1=s.retrieval.bm25_k1,
            bm25_b=s.retrieval.bm25_b,
            busy_timeout_ms=s.storage.busy_timeout_ms,
        )

    def upgrade_store(self) -> tuple[str, int, list[str]]:
        """``ragkeel db upgrade``: bring the store's schema to this version; (backend, schema
        version now, the steps applied). PostgreSQL runs its pending migrations
        (storage/postgres/schema.py); the SQLite file migrates itself when opened."""
        s = self.settings.storage
        if s.backend == "postgres":
            from ragkeel.storage.postgres.store import upgrade_schema

            assert s.postgres.url is not None  # the settings refuse postgres without a url
            version, applied = upgrade_schema(s.postgres.url.get_secret_value())
            return "postgres", version, [f"{m.version}: {m.description}" for m in applied]
        from ragkeel.storage.schema import SCHEMA_VERSION

        _ = self.store  # opening the file applies its migrations
        return "sqlite", SCHEMA_VERSION, []

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return build_embedder(s.embedding, models_dir=s.models_dir, cache_dir=s.home / "cache")

    @cached_property
    def chunker(self) -> Chunker:
        ing = self.settings.ingestion
        return Chunker(self.embedder.tokenizer, ing.chunk_tokens, ing.chunk_overlap)

    @cached_property
    def pipeline(self) -> IngestionPipeline:
        ing = self.settings.ingestion
        return IngestionPipeline(
            self.store,
            self.embedder,
            self.chunker,
            max_file_bytes=ing.max_file_bytes,
            embed_batch_chunks=ing.embed_batch_chunks,
            limits=ParseLimits.from_settings(ing),
            parse_workers=(
                auto_parse_workers() if ing.parse_workers == "auto" else ing.parse_workers
            ),
            language=self.settings.retrieval.language,
        )

    # -- the ingestion job queue (issue 13: jobs/) --

    @property
    def queue_enabled(self) -> bool:
        """Whether ingestion goes through the job queue (``ingestion.queue`` names an engine)."""
        return self.settings.ingestion.queue is not None

    @cached_property
    def job_queue(self) -> JobQueue:
        """The ingestion job queue; ``CONFIG_INVALID`` when ``ingestion.queue`` is unset or no
        queue database is known (``ingestion.queue_url``, else the PostgreSQL store's URL).
        procrastinate and psycopg are imported here, only when the queue is on."""
        ing = self.settings.ingestion
        if ing.queue is None:
            raise ConfigError(
                "no job queue is configured",
                hint="set ingestion.queue: procrastinate (RAGKEEL_INGESTION__QUEUE)",
            )
        url = ing.queue_url.get_secret_value() if ing.queue_url else self._postgres_store_url()
        if not url:
            raise ConfigError(
                "ingestion.queue is set but no queue database is known",
                hint="set ingestion.queue_url (RAGKEEL_INGESTION__QUEUE_URL) to a PostgreSQL "
                "URL, or use storage.backend: postgres",
            )
        from ragkeel.jobs.procrastinate_queue import ProcrastinateQueue

        return ProcrastinateQueue(url, ing.jobs)

    def _postgres_store_url(self) -> str | None:
        """storage.postgres.url when the PostgreSQL store is on: the queue's default database."""
        storage = self.settings.storage
        if storage.backend != "postgres" or storage.postgres.url is None:
            return None
        return storage.postgres.url.get_secret_value()

    @cached_property
    def retriever(self) -> HybridRetriever:
        r = self.settings.retrieval
        return HybridRetriever(
            self.store,
            self.store.keyword,
            self.store.vectors,
            self.embedder,
            fusion=r.fusion,
            rrf_k=r.rrf_k,
            keyword_weight=r.keyword_weight,
            dense_weight=r.dense_weight,
            candidates=r.candidates,
            reranker=self.conditional_reranker,
        )

    @cached_property
    def reranker(self) -> RerankStack | None:
        """The remote reranker behind the gateway's retry and breaker (``retrieval.rerank``,
        issue 15; ``gateway/stack.py`` ``build_reranker``), or None: off."""
        return build_reranker(
            self.settings.retrieval.rerank, self.settings.gateway, **self._shared_breakers()
        )

    @cached_property
    def conditional_reranker(self) -> ConditionalReranker | None:
        """The gate that decides, per search, whether the reranker is called
        (``retrieval/rerank.py``); None without a reranker."""
        if (stack := self.reranker) is None:
            return None
        r = self.settings.retrieval.rerank
        gate = RerankGate(
            margin_below=r.gate.margin_below,
            on_disagreement=r.gate.on_disagreement,
            top_score_below=r.gate.top_score_below,
            always=r.always,
        )
        return ConditionalReranker(
            stack.model,
            gate,
            candidates=r.candidates,
            top_n=r.top_n,
            timeout_s=r.timeout_s,
            deadline_s=r.deadline_s,
        )

    @cached_property
    def local_model(self) -> ChatModel:
        """The local GGUF model (loaded lazily on first use)."""
        return self._local(self.local_gguf())

    @cached_property
    def local_cheap_model(self) -> ChatModel | None:
        """The cheap local tier the router may send a question to (``generation.local.
        cheap_model``; None: off). It takes turns with ``local_model`` (one queue, issue 14)."""
        cheap = self.settings.generation.local.cheap_model
        if cheap is None:
            return None
        path = model_path(self.models_dir, get_model(cheap))
        if not path.is_file():
            # a route to a model that is not there would turn every easy question into a
            # degraded (extractive) answer: the router stays off and the main model answers all
            _log.warning(
                "generation.local.cheap_model %s is not installed at %s: every question goes "
                "to %s (install it: ragkeel models install --model %s)",
                cheap,
                path,
                self.settings.generation.local.model,
                cheap,
            )
            return None
        return self._local(pinned_file(self.models_dir, get_model(cheap)))

    def local_gguf(self) -> GgufFile:
        """The local model's GGUF file: ``generation.local.model_path`` (your own, pinned by
        ``generation.local.sha256`` when set; issue 15) or else the pinned ``model`` in the
        models directory (``models/gguf.py``). The in-process model and ``ragkeel
        model-server`` load this file."""
        local = self.settings.generation.local
        if local.model_path is not None:
            return own_file(local.model_path, sha256=local.sha256, stamps=self.models_dir / STAMPS)
        return pinned_file(self.models_dir, get_model(local.model))

    @cached_property
    def local_queue(self) -> GenerationQueue:
        """The one generation slot of the local models: they share this machine's cores."""
        return GenerationQueue(self.settings.generation.local.max_queue)

    def _local(self, file: GgufFile) -> LocalChatModel:
        local = self.settings.generation.local
        return LocalChatModel(
            file,
            n_ctx=local.n_ctx,
            threads=local.threads,
            default_timeout_s=self.settings.generation.model_timeout_s,
            queue=self.local_queue,
            warm_prefix=self._answer_prefix if local.warm_prefix else None,
        )

    def _answer_prefix(self) -> tuple[ChatMessage, ...]:
        """The answer prompt with no question and no sources: its fixed prefix (issue 14)."""
        return self.answerer.template.render("", "")

    @property
    def local_model_settings(self) -> LocalModelSettings:
        """The local model's own section (``generation.local``): ``ragkeel model-server``
        serves that model with these settings."""
        return self.settings.generation.local

    @cached_property
    def gateway(self) -> GatewayStack | None:
        """Every model call goes through here (``gateway/stack.py`` composes the policies)."""
        s = self.settings
        if s.generation.provider == "none" and not s.gateway.deployments:
            return None  # extractive answers only
        wants_local = s.generation.provider == "local" or s.gateway.fallback_to_local
        if served_local_model(s) is not None:
            wants_local = False  # reached as the deployment "local", never loaded here
        return build_gateway(
            s.gateway,
            deployments_of(s),
            self.prices,
            local=lambda: self.local_model if wants_local else None,
            local_cheap=lambda: self.local_cheap_model if wants_local else None,
            accounts=self.accounts,
            ledger=self.ledger,
            **self._shared_breakers(),
        )

    @cached_property
    def chat_model(self) -> ChatModel | None:
        """The model the answer flow calls, or None for extractive-only."""
        return self.gateway.model if self.gateway else None

    @cached_property
    def ledger(self) -> SqliteCostLedger:
        return SqliteCostLedger(self.settings.cost_ledger_path)

    @cached_property
    def accounts(self) -> Accounts:
        """Each tenant's spend today, against ``gateway.limits.cost_per_day``: in Redis with
        ``redis.url`` (shared by replicas), else in this process."""
        budget = self.settings.gateway.limits.cost_per_day
        if (shared := self.shared_state) is None:
            return CostAccounts(budget, source=self.ledger)
        from ragkeel.admission.redis_accounts import RedisCostAccounts  # the scale extra

        lease_s = self.settings.redis.reservation_lease_s
        return RedisCostAccounts(shared, budget, source=self.ledger, lease_s=lease_s)

    # -- shared state for several replicas (issue 13; shared_state.py) --

    @cached_property
    def shared_state(self) -> SharedState | None:
        """The Redis that replicas share (``redis``), or None: every piece of state stays
        in-process. Its failures are logged and counted in ``/metrics``."""
        r = self.settings.redis
        if r.url is None:
            return None
        return connect(
            r.url.get_secret_value(),
            prefix=r.key_prefix,
            socket_timeout_s=r.socket_timeout_s,
            connect_timeout_s=r.connect_timeout_s,
            outage=Outage(pause_s=r.retry_after_failure_s, on_error=self._shared_state_failed),
        )

    def shared_state_reachable(self) -> bool | None:
        """For ``/readyz``: whether the shared Redis answers now (None: ``redis.url`` unset)."""
        shared = self.shared_state
        return None if shared is None else shared.reachable()

    def _shared_state_failed(self, use: Use) -> None:
        self.metrics.shared_state_failed(use)

    def _shared_breakers(self) -> dict[str, Any]:
        """The breakers' store and clock for ``build_gateway``: Redis and the wall clock when
        shared, else its defaults."""
        if (shared := self.shared_state) is None:
            return {}
        from ragkeel.gateway.redis_breaker_store import RedisBreakerStore  # the scale extra

        return {"breaker_store": RedisBreakerStore(shared), "breaker_clock": WALL_CLOCK}

    @cached_property
    def admission(self) -> Admission:
        """The gates an answer passes before it starts (``admission/gates.py``): the tenant
        limits that ``gateway.limits`` configures (none configured: no limiter), the global cap
        of answers in flight, the local model's ``1 + generation.local.max_queue`` slots
        (taken only by answers that generate on the local model), and each tenant's
        ``api_limits.max_streams_per_tenant`` open streams."""
        lim = self.settings.gateway.limits
        limiter = None
        if any(
            v is not None
            for v in (lim.requests_per_minute, lim.tokens_per_minute, lim.cost_per_day)
        ):
            shared = self.shared_state
            limiter = TenantLimiter(
                TenantLimits(requests=lim.requests_per_minute, tokens=lim.tokens_per_minute),
                accounts=self.accounts if lim.cost_per_day is not None else None,
                storage=shared_storage(shared) if shared is not None else None,
                outage=shared.outage if shared is not None else None,
            )
        return Admission(
            limiter=limiter,
            shedder=LoadShedder(lim.max_in_flight),
            local=LoadShedder(1 + self.settings.generation.local.max_queue),
            streams=StreamLimiter(self.settings.api_limits.max_streams_per_tenant),
        )

    @cached_property
    def request_limits(self) -> Limits:
        """The largest request body and the longest question (``api_limits``)."""
        lim = self.settings.api_limits
        return Limits(max_body_bytes=lim.max_body_bytes, max_question_chars=lim.max_question_chars)

    @cached_property
    def answerer(self) -> Answerer:
        gen = self.settings.generation
        policy = AnswerPolicy(
            k=gen.k,
            gate_threshold=gen.gate_threshold,
            gate_keyword_threshold=gen.gate_keyword_threshold,
            context_budget=gen.context_budget,
            packing=Packing(**gen.packing.model_dump()),
            max_answer_tokens=gen.max_answer_tokens,
            template_version=gen.template_version,
            mode=gen.mode,
            retrieval_mode=self.settings.retrieval.mode,
            model_timeout_s=gen.model_timeout_s,
            deadline_s=self.settings.gateway.request_deadline_s,
            default_max_tokens=self.settings.gateway.budget.max_tokens,
            min_support=gen.min_support,
            extractive_sentences=gen.extractive_sentences,
            guard=self.output_guard,
            ungrounded=gen.ungrounded,
        )
        return Answerer(
            self.retriever,
            self.chat_model,
            policy,
            cost_of=self.prices.cost if gen.provider == "openai" else None,
            cache=self.answer_cache,
            condenser=self.condenser,
        )

    @cached_property
    def condenser(self) -> Condenser | None:
        """How a follow-up is made standalone (``generation.condense``, issue 15; None:
        ``off``). ``auto``: the model condenser on the gateway's cheap route
        (``GatewayStack.cheap``) when a model answers generatively and that route is a cheap
        tier, cheap deployments or a remote model — not the one local model, which answers
        too (the rules then); else the rules; ``model`` asks the model even for extractive
        answers and with the one local model (``CONFIG_INVALID`` without one)."""
        gen = self.settings.generation
        c = gen.condense
        if c.mode == "off":
            return None
        rules = RuleCondenser(max_turns=c.max_turns)
        if c.mode == "rules":
            return rules
        gateway = self.gateway
        if gateway is None and c.mode == "model":
            raise ConfigError(
                "generation.condense.mode is model but no chat model is configured",
                hint="set generation.provider (local or openai), or condense.mode: auto or rules",
            )
        # auto with the one local model and no cheap route beside it: the rules. Measured
        # (docs/benchmarks.md, "Issue 15: multi-turn"): the 1.5B model's rewrites were off the
        # conversation for 33 of 55 follow-ups, retrieval was the same as the rules', and each
        # follow-up waited 15-20 s more for the one generation slot.
        one_local = (
            gen.provider == "local" and gateway is not None and gateway.cheap is gateway.model
        )
        if gateway is None or (c.mode == "auto" and (gen.mode == "extractive" or one_local)):
            return rules
        return ModelCondenser(
            gateway.cheap,
            rules,
            prompt=c.prompt,
            max_turns=c.max_turns,
            max_turn_chars=c.max_turn_chars,
            max_tokens=c.max_tokens,
            timeout_s=c.timeout_s,
            rules_offline=c.mode == "auto",
            check=on_topic,
        )

    # -- the answer cache (issue 14; caching/) --

    @cached_property
    def answer_cache(self) -> AnswerCache | None:
        """The answer cache of ``cache`` (None: ``cache.enabled`` off). Its key carries the
        store's revision of the collections asked (read per question) and a fingerprint of
        every setting that changes answers: the ``generation``, ``retrieval``, ``embedding``
        and ``gateway`` sections (secrets masked), so a new configuration never reads an
        answer of the old one. With ``cache.semantic``, a similar question in the same bucket
        may be served too (``caching/semantic.py``'s matcher at ``semantic_threshold``)."""
        c = self.settings.cache
        if not c.enabled:
            return None
        s = self.settings
        config = fingerprint(
            *(
                x.model_dump(mode="json")
                for x in (s.generation, s.retrieval, s.embedding, s.gateway)
            )
        )
        store, backend = self.store, self.answer_cache_backend
        semantic = None
        if c.semantic:  # the question embedded once, by the retriever's embedder
            threshold = c.semantic_threshold or DEFAULT_SIMILARITY_THRESHOLD
            semantic = SemanticLookup(
                self.embedder.embed_query, SemanticMatcher(threshold), SemanticIndex(backend)
            )
        return AnswerCache(
            backend,
            lambda collection, scope: store.revision(collection, scope=scope),
            config,
            ttl_s=c.ttl_s,
            semantic=semantic,
        )

    @cached_property
    def answer_cache_backend(self) -> CacheBackend:
        """``cache.backend``: ``memory``, or an in-process LRU before SQLite (in the home) or
        Redis (``redis.url``; ``auto`` picks it when set)."""
        c = self.settings.cache
        front = MemoryCache(min(c.memory_entries, c.max_entries))
        if c.backend == "memory":
            return MemoryCache(c.max_entries)
        shared = self.shared_state
        if c.backend == "redis" or (c.backend == "auto" and shared is not None):
            if shared is None:
                raise ConfigError(
                    "cache.backend is redis but redis.url is not set",
                    hint="set redis.url (RAGKEEL_REDIS__URL), or cache.backend: auto",
                )
            from ragkeel.caching.redis_backend import RedisCache  # the scale extra

            return TieredCache(front, RedisCache(shared, c.max_entries))
        sqlite = SqliteCache(self.settings.home / "answer-cache.db", c.max_entries)
        return TieredCache(front, sqlite)

    @cached_property
    def output_guard(self) -> OutputGuard | None:
        """The output checks of generated answers (None: ``generation.safety.output_checks``
        off); the canary is the configured one, else a fresh one for this process."""
        safety = self.settings.generation.safety
        if not safety.output_checks:
            return None
        canary = safety.canary.get_secret_value() if safety.canary else new_canary()
        hosts = frozenset(h.strip().lower() for h in safety.allowed_link_hosts if h.strip())
        return OutputGuard(canary, hosts)

    @cached_property
    def prices(self) -> PriceTable:
        """Published list prices of common models, replaced per model by ``generation.prices``."""
        served = served_local_model(self.settings)  # the shared model server costs nothing
        # (the in-process model is metered without a price: free whatever its name)
        free = {served.model: Price(0.0, 0.0)} if served is not None else {}
        return PriceTable.with_defaults(
            free
            | {
                m: Price(p.input_per_mtok, p.output_per_mtok)
                for m, p in self.settings.generation.prices.items()
            }
        )

    @cached_property
    def traces(self) -> TraceStore:
        """Where every request's trace goes (a no-op store when observability is disabled)."""
        obs = self.settings.observability
        if not obs.enabled:
            return NullTraceStore()
        retention = Retention(  # issue 12: 0 means no limit
            max_age_s=obs.retention_days * 86_400 if obs.retention_days else None,
            max_bytes=int(obs.max_db_mb * 2**20) if obs.max_db_mb else None,
            interval_s=obs.retention_interval_s,
        )
        return SqliteTraceStore(
            self.settings.trace_store_path,
            keep_prompt_text=obs.keep_prompt_text,
            retention=retention if retention.max_age_s or retention.max_bytes else None,
        )

    # -- metrics and logs (issue 12) --

    @property
    def metrics_access(self) -> str:
        """Who may read ``GET /metrics`` (``observability.metrics``: auto, public, off)."""
        return self.settings.observability.metrics

    @property
    def log_format(self) -> LogFormat:
        """``observability.log_format``: json or text lines (``observability/logs.py``)."""
        return self.settings.observability.log_format

    @property
    def log_level(self) -> str:
        return self.settings.observability.log_level

    @property
    def log_questions(self) -> bool:
        """Whether an answer's log line carries the question (``observability.log_questions``)."""
        return self.settings.observability.log_questions

    @cached_property
    def metrics(self) -> Metrics:
        """The Prometheus metrics (``observability/metrics.py``; recording nothing with
        ``observability.metrics: off``), with the series read at
        scrape time: each deployment's breaker (once the gateway is built: a scrape never
        builds it) and each tenant's collections in the store; the embedding cache's hits and
        misses (once the embedder is built)."""
        metrics = Metrics(enabled=self.metrics_access != "off")
        metrics.watch_embedding_cache(self._embedding_cache_counts)
        metrics.add_collector(
            ScrapeGauge(
                "ragkeel_breaker_state",
                "Each deployment's circuit breaker: 1 for its current state.",
                ("deployment", "state"),
                self._breaker_states,
            )
        )
        for what in ("documents", "chunks"):
            metrics.add_collector(
                ScrapeGauge(
                    f"ragkeel_index_{what}",
                    f"{what.capitalize()} in the index, per tenant and collection.",
                    ("tenant", "collection"),
                    partial(self._index_sizes, what),
                )
            )
        return metrics

    def _breaker_states(self) -> Reading:
        gateway, reranker = self.__dict__.get("gateway"), self.__dict__.get("reranker")
        snaps = [
            *(gateway.readiness() if gateway else ()),
            *([reranker.readiness()] if reranker else ()),
        ]
        for snap in snaps:
            for state in get_args(SnapshotState):
                yield (str(snap["deployment"]), state), 1.0 if snap["state"] == state else 0.0

    def _embedding_cache_counts(self) -> tuple[int, int] | None:
        embedder = self.__dict__.get("embedder")
        if isinstance(embedder, CachingEmbedder):
            return embedder.hits, embedder.misses
        return None

    def _index_sizes(self, what: str) -> Reading:
        store = self.store
        for tenant in store.tenants():
            scope = AccessScope(tenant, all_principals=True)
            for collection, info in store.collections(scope=scope).items():
                yield (tenant, collection), float(str(info[what]))

    @cached_property
    def tracer(self) -> Tracer:
        """OpenTelemetry spans over OTLP/HTTP (``observability.otlp``; ``observability/otel.py``),
        or the no-op tracer when no endpoint is set: then the SDK is never imported."""
        otlp = self.settings.observability.otlp
        if otlp.endpoint is None:
            return NullTracer()
        try:
            from ragkeel.observability.otel import OtelTracer
        except ImportError as exc:
            raise ConfigError(
                "observability.otlp.endpoint is set but the OpenTelemetry SDK is not installed",
                hint="pip install 'ragkeel[otel]', or unset observability.otlp.endpoint",
            ) from exc
        return OtelTracer(otlp, scrub=mask_canaries)  # no system-prompt canary on a span

    @cached_property
    def keys(self) -> SqliteKeyStore:
        """The API keys (``$RAGKEEL_HOME/keys.db`` or ``api.keys_path``; the file is opened on
        first use, so a server with auth off never creates it)."""
        return SqliteKeyStore(self.settings.keys_path)

    @cached_property
    def edge(self) -> EdgePolicy:
        """Who may reach the HTTP API and from where (``api.auth``, ``api.docs``,
        ``api.cors_origins``; ``identity/edge.py``)."""
        api = self.settings.api
        return EdgePolicy(auth=api.auth, docs=api.docs, cors_origins=tuple(api.cors_origins))

    # -- the monitor (issue 12): alert rules over the trace store --

    @property
    def monitor_enabled(self) -> bool:
        """Whether ``serve`` runs the monitor's background thread (``monitor.enabled``)."""
        return self.settings.monitor.enabled

    @cached_property
    def monitor(self) -> Monitor:
        """The alert rules over rolling windows of the trace store (``monitor``), with the
        webhook when ``monitor.webhook.url`` is set and the cost ledger when the
        ``spend_per_day`` rule is on; its thread runs only once ``start``ed."""
        m = self.settings.monitor
        hook = m.webhook
        notifier = None
        if hook.url is not None:
            notifier = WebhookNotifier(
                hook.url.get_secret_value(),
                {k: v.get_secret_value() for k, v in hook.headers.items()},
                timeout_s=hook.timeout_s,
                max_attempts=hook.max_attempts,
                backoff=Backoff(hook.backoff_base_s, hook.backoff_max_s),
            )
        return Monitor(
            m,
            TraceWindows(self.settings.trace_store_path, max_samples=m.max_samples),
            spent_on=ledger_spend(self.ledger) if m.rules.spend_per_day_usd is not None else None,
            notifier=notifier,
            speaks=self.monitor_lease.held,
        )

    @cached_property
    def monitor_lease(self) -> FileLease:
        """Which of the processes on this home sends the alerts (``serve --workers N``,
        replicas): ``$RAGKEEL_HOME/monitor.lock`` (``observability/monitor/lease.py``)."""
        return FileLease(self.settings.home / "monitor.lock")

    def start_monitor(self) -> None:
        """Run the monitor's thread (``serve``) and show its alerts in ``/metrics`` as the
        gauge ``ragkeel_alert_firing{rule,severity}`` (1 firing, 0 not); once per container."""
        if "_monitor_started" in self.__dict__:
            return
        self.__dict__["_monitor_started"] = True
        monitor = self.monitor
        readings = partial(alert_readings, monitor)
        self.metrics.add_collector(ScrapeGauge(ALERT_GAUGE, ALERT_HELP, ALERT_LABELS, readings))
        monitor.start()

    # -- feedback and the dashboard (issue 12) --

    @cached_property
    def feedback(self) -> SqliteFeedbackStore | None:
        """Ratings of traced answers, in the trace file (None while tracing is off: there is
        nothing to rate)."""
        if not self.settings.observability.enabled:
            return None
        return SqliteFeedbackStore(self.settings.trace_store_path)

    @property
    def ui(self) -> UiSettings:
        """The dashboard's own section (``ui/``: session lifetime, evaluation reports)."""
        return self.settings.ui

    @property
    def reports_dir(self) -> Path:
        """Where the dashboard lists evaluation reports (``ui.reports_dir``, default
        ``$RAGKEEL_HOME/results``, where ``ragkeel eval run`` writes them)."""
        return self.settings.ui.reports_dir or self.settings.home / "results"

    def close(self) -> None:
        if "job_queue" in self.__dict__:
            self.job_queue.close()
        if "monitor" in self.__dict__:
            self.monitor.close()
        if "monitor_lease" in self.__dict__:
            self.monitor_lease.close()
        if "feedback" in self.__dict__ and self.feedback is not None:
            self.feedback.close()
        if "keys" in self.__dict__:
            self.keys.close()
        if "gateway" in self.__dict__ and self.gateway is not None:
            self.gateway.close()
        if "answer_cache_backend" in self.__dict__:  # before the Redis connection it may use
            self.answer_cache_backend.close()
        if "shared_state" in self.__dict__ and self.shared_state is not None:
            self.shared_state.close()
        if "ledger" in self.__dict__:
            self.ledger.close()
        if "traces" in self.__dict__:
            self.traces.close()
        if "retriever" in self.__dict__:
            self.retriever.close()
        if "reranker" in self.__dict__ and self.reranker is not None:
            self.reranker.close()
        if "store" in self.__dict__:
            self.store.close()
        if "tracer" in self.__dict__:  # last: flushes the spans of everything closed above
            self.tracer.close()
