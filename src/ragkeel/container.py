"""Wiring: builds every component from one ``Settings``. The only place that knows which
backend implements which protocol. Components are created lazily: ``config show`` needs no
database, ``search --mode bm25`` needs no embedding model."""

from __future__ import annotations

from functools import cached_property

from ragkeel.admission.accounts import CostAccounts
from ragkeel.admission.gates import Admission
from ragkeel.admission.load_shedder import LoadShedder
from ragkeel.admission.request_limits import Limits
from ragkeel.admission.stream_limits import StreamLimiter
from ragkeel.admission.tenant_limits import TenantLimiter, TenantLimits
from ragkeel.embeddings import build_embedder
from ragkeel.embeddings.base import Embedder
from ragkeel.gateway.base import ChatModel
from ragkeel.gateway.pricing import Price, PriceTable
from ragkeel.gateway.providers.local import LocalChatModel
from ragkeel.gateway.stack import GatewayStack, build_gateway
from ragkeel.generation.answerer import Answerer
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.parsers import ParseLimits
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.models.gguf import get_model
from ragkeel.observability.cost_ledger import SqliteCostLedger
from ragkeel.observability.trace_store import NullTraceStore, SqliteTraceStore, TraceStore
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.settings import Settings
from ragkeel.storage.sqlite import SqliteDocumentStore


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def store(self) -> SqliteDocumentStore:
        s = self.settings
        return SqliteDocumentStore(
            s.database_path,
            bm25_k1=s.retrieval.bm25_k1,
            bm25_b=s.retrieval.bm25_b,
            busy_timeout_ms=s.storage.busy_timeout_ms,
        )

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings)

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
        )

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
        )

    @cached_property
    def local_model(self) -> ChatModel:
        """The local GGUF model (loaded lazily on first use)."""
        local = self.settings.generation.local
        return LocalChatModel(
            self.settings.models_dir,
            get_model(local.model),
            n_ctx=local.n_ctx,
            threads=local.threads,
            default_timeout_s=self.settings.generation.model_timeout_s,
            max_queue=local.max_queue,
        )

    @cached_property
    def gateway(self) -> GatewayStack | None:
        """Every model call goes through here (``gateway/stack.py`` composes the policies)."""
        s = self.settings
        wants_local = s.generation.provider == "local" or s.gateway.fallback_to_local
        return build_gateway(
            s,
            self.prices,
            local=lambda: self.local_model if wants_local else None,
            accounts=self.accounts,
            ledger=self.ledger,
        )

    @cached_property
    def chat_model(self) -> ChatModel | None:
        """The model the answer flow calls, or None for extractive-only."""
        return self.gateway.model if self.gateway else None

    @cached_property
    def ledger(self) -> SqliteCostLedger:
        return SqliteCostLedger(self.settings.cost_ledger_path)

    @cached_property
    def accounts(self) -> CostAccounts:
        """Each tenant's spend today, against ``gateway.limits.cost_per_day``."""
        return CostAccounts(self.settings.gateway.limits.cost_per_day, source=self.ledger)

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
            limiter = TenantLimiter(
                TenantLimits(requests=lim.requests_per_minute, tokens=lim.tokens_per_minute),
                accounts=self.accounts if lim.cost_per_day is not None else None,
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
        return Answerer(
            self.retriever,
            self.chat_model,
            k=gen.k,
            gate_threshold=gen.gate_threshold,
            gate_keyword_threshold=gen.gate_keyword_threshold,
            context_budget=gen.context_budget,
            max_answer_tokens=gen.max_answer_tokens,
            template_version=gen.template_version,
            mode=gen.mode,
            model_timeout_s=gen.model_timeout_s,
            min_support=gen.min_support,
            extractive_sentences=gen.extractive_sentences,
            cost_of=self.prices.cost if gen.provider == "openai" else None,
            deadline_s=self.settings.gateway.request_deadline_s,
            default_max_tokens=self.settings.gateway.budget.max_tokens,
            retrieval_mode=self.settings.retrieval.mode,
        )

    @cached_property
    def prices(self) -> PriceTable:
        """Published list prices of common models, replaced per model by ``generation.prices``."""
        return PriceTable.with_defaults(
            {
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
        return SqliteTraceStore(
            self.settings.trace_store_path, keep_prompt_text=obs.keep_prompt_text
        )

    def close(self) -> None:
        if "gateway" in self.__dict__ and self.gateway is not None:
            self.gateway.close()
        if "ledger" in self.__dict__:
            self.ledger.close()
        if "traces" in self.__dict__:
            self.traces.close()
        if "retriever" in self.__dict__:
            self.retriever.close()
        if "store" in self.__dict__:
            self.store.close()
