"""``ragkeel ask "question" [--stream] [--json] [--k N] [--model NAME] [--mode extractive]
[--tenant NAME] [--principal P]... [--no-cache]``; ``--tenant`` names whose documents are searched
and whose limits and ledger account pay, ``--principal`` answers as those ACL principals
(``cli/scope.py``). An answer from the answer cache (issue 14) says ``cached`` in its footer
(``"cached": true`` with ``--json``); ``--no-cache`` asks afresh and keeps the new answer.

Sources first: without ``--json`` the retrieved sources and the gate's decision are printed as
soon as retrieval ends, while the model works on the answer (``--no-stream`` too); the answer
follows, then the sources it cites and its figures."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from rich.console import Console

from ragkeel.cli.scope import PrincipalOption, operator_scope
from ragkeel.container import Container
from ragkeel.errors import RagkeelError
from ragkeel.generation.answer import Answer, DoneEvent, ErrorEvent, RetrievalEvent, TokenEvent
from ragkeel.generation.cached import CacheUse
from ragkeel.generation.policy import Budget
from ragkeel.generation.tracing import trace_from_answer, trace_from_error
from ragkeel.observability import genai, names, tracing
from ragkeel.observability.context import request_context
from ragkeel.observability.names import ROUTE_CLI_ASK
from ragkeel.types import AccessScope


def ask_command(
    question: Annotated[str, typer.Argument(help="the question")],
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, max=100, help="chunks retrieved")] = None,
    model: Annotated[str | None, typer.Option("--model", help="local model key")] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="generative (default) or extractive")
    ] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream")] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", min=0, help="USD this answer may cost")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="prompt + answer tokens at most")
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="whose documents, limits and ledger account"),
    ] = None,
    principal: PrincipalOption = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="answer from the answer cache when it can; --no-cache asks afresh (and keeps "
            "the new answer)",
        ),
    ] = True,
) -> None:
    """Answer a question from the index, with numbered citations (offline by default)."""
    overrides: dict[str, Any] = {}
    if k is not None:
        overrides["k"] = k
    if mode is not None:
        overrides["mode"] = mode
    if model is not None:
        overrides["local"] = {"model": model}
    scope = operator_scope(tenant, principal)
    loaded = Container.load(generation=overrides) if overrides else Container.load()
    with loaded as container, request_context(ROUTE_CLI_ASK, tenant=tenant):
        budget = Budget(tenant, max_cost, max_tokens)
        attrs = genai.root_attributes(ROUTE_CLI_ASK)
        with tracing.request(container.tracer, names.SPAN_CLI_ASK, attrs):  # when traced
            answer, streamed, trace_id = _traced_run(
                container,
                question,
                collection,
                _Show(stream, as_json),
                budget,
                scope,
                "use" if cache else "refresh",
            )
    if as_json:
        data = {**answer_to_dict(answer), "trace_id": trace_id}
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        _print_footer(answer, streamed=streamed, trace_id=trace_id)


@dataclass(frozen=True, slots=True)
class _Show:
    """What ``ask`` prints while answering: the tokens as they come (``--stream`` without
    ``--json``) and the sources as soon as retrieval ends (without ``--json``)."""

    stream: bool
    as_json: bool

    @property
    def tokens(self) -> bool:
        return self.stream and not self.as_json

    @property
    def sources(self) -> bool:
        return not self.as_json


def _traced_run(
    container: Container,
    question: str,
    collection: str | None,
    show: _Show,
    budget: Budget,
    scope: AccessScope | None,
    cache: CacheUse = "use",
) -> tuple[Answer, bool, str | None]:
    """``_run`` with one trace recorded, for the answer or the failure (then re-raised)."""
    start = time.perf_counter()
    try:
        answer, streamed = _run(container, question, collection, show, budget, scope, cache)
    except Exception as exc:
        ms = (time.perf_counter() - start) * 1000
        failed = trace_from_error(question, exc, route=ROUTE_CLI_ASK, latency_ms=ms)
        genai.annotate_request(failed)
        if container.traces.record(failed) is not None:
            print(f"trace {failed.id}", file=sys.stderr)
        raise
    keep = container.keep_prompt_text
    trace = trace_from_answer(answer, route=ROUTE_CLI_ASK, keep_prompt_text=keep)
    genai.annotate_request(trace)
    return answer, streamed, container.traces.record(trace)


def _run(
    container: Container,
    question: str,
    collection: str | None,
    show: _Show,
    budget: Budget,
    scope: AccessScope | None,
    cache: CacheUse = "use",
) -> tuple[Answer, bool]:
    """The answer, and whether its final text was already printed token by token."""
    streamed_any, stream = False, show.tokens
    events = container.answerer.stream(
        question, collection=collection, budget=budget, scope=scope, cache=cache
    )
    for event in events:
        if isinstance(event, RetrievalEvent) and show.sources:
            _print_sources(event)
        elif isinstance(event, TokenEvent) and stream:
            sys.stdout.write(event.text)
            sys.stdout.flush()
            streamed_any = True
        elif isinstance(event, ErrorEvent):
            if event.fatal:
                raise _Fatal(event.code, event.message)
            if streamed_any:
                sys.stdout.write("\n")
            print(f"[degraded: {event.code}: {event.message}]", file=sys.stderr)
            streamed_any = False
        elif isinstance(event, DoneEvent):
            if stream and streamed_any:
                sys.stdout.write("\n")
            return event.answer, streamed_any
    raise _Fatal("ANSWER_MISSING", "the answer flow ended without an answer")


def _print_sources(event: RetrievalEvent) -> None:
    """The retrieved sources and the gate's decision, before the model has answered."""
    gate = event.gate
    verdict = "passed" if gate.passed else "refused"
    lines = [f"Sources ({len(event.hits)} retrieved; gate {verdict}: {gate.reason}):"]
    for rank, hit in enumerate(event.hits, start=1):
        c = hit.chunk
        page = f", p. {c.page}" if c.page else ""
        lines.append(f"  {rank}. {c.title or c.source}{page} — {c.source} ({hit.score:.3f})")
    sys.stdout.write("\n".join(lines) + "\n\n")
    sys.stdout.flush()


class _Fatal(RagkeelError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _print_footer(answer: Answer, *, streamed: bool, trace_id: str | None) -> None:
    console = Console()
    if not streamed:
        console.print(answer.text, markup=False, highlight=False)
    console.print()
    for c in answer.citations:
        page = f", p. {c.page}" if c.page else ""
        console.print(f"[{c.number}] {c.title or c.source}{page} — {c.source}", markup=False)
    lat = answer.latency_ms
    flags = [answer.mode, "grounded" if answer.grounded else "NOT grounded"]
    if answer.degraded:
        flags.append(f"degraded ({answer.degraded_reason})")
    if answer.cached and answer.cache is not None:
        flags.append(f"cached ({answer.cache.kind}, {answer.cache.age_s or 0:.0f} s old)")
    console.print(
        f"{' · '.join(flags)} · model {answer.model or '-'} · "
        f"first token {lat.get(names.STAGE_FIRST_TOKEN, 0):.0f} ms · "
        f"total {lat.get(names.STAGE_TOTAL, 0):.0f} ms · "
        f"tokens {answer.usage.prompt_tokens}+{answer.usage.completion_tokens} · "
        f"cost ${answer.cost:.4f}" + (f" · trace {trace_id}" if trace_id else ""),
        markup=False,
    )


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    data = asdict(answer)
    data.pop("prompt", None)
    data["cached"] = answer.cached
    data["hits"] = [
        {
            "chunk_id": h.chunk.id,
            "document_id": h.chunk.document_id,
            "score": h.score,
            "keyword_rank": h.keyword_rank,
            "dense_rank": h.dense_rank,
        }
        for h in answer.hits
    ]
    return data
