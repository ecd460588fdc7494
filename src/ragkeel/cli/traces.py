"""``ragkeel traces [--last N] [--outcome …] [--json]`` and ``ragkeel trace ID [--json]``: what
the recorded requests did (``observability/trace_store.py``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ragkeel.container import Container
from ragkeel.errors import TraceNotFoundError
from ragkeel.observability import names
from ragkeel.observability.trace import Outcome, Trace

_EXCERPT = 60
_SHORT_ID = 16  # 12 hex digits of time + 4 random: unique in practice; `trace` takes prefixes


class OutcomeChoice(StrEnum):
    answered = "answered"
    cannot_answer = "cannot_answer"
    degraded = "degraded"
    error = "error"


_OUTCOMES: dict[OutcomeChoice, Outcome] = {
    OutcomeChoice.answered: "answered",
    OutcomeChoice.cannot_answer: "cannot_answer",
    OutcomeChoice.degraded: "degraded",
    OutcomeChoice.error: "error",
}


def traces_command(
    last: Annotated[int, typer.Option("--last", min=1, max=10_000, help="how many")] = 20,
    outcome: Annotated[OutcomeChoice | None, typer.Option("--outcome")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the most recent request traces, newest first."""
    with Container.load() as container:
        if not container.tracing_enabled:
            print("tracing is off (observability.enabled = false)", file=sys.stderr)
        found = container.traces.recent(last, _OUTCOMES[outcome] if outcome else None)
    if as_json:
        typer.echo(json.dumps([t.to_dict() for t in found], indent=2))
    else:
        _print_table(found)


def trace_command(
    trace_id: Annotated[
        str, typer.Argument(help="a trace id, or a unique prefix of it (from `ask` or `traces`)")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one request trace in full: retrieval, gate, prompt, output, citations, latencies."""
    with Container.load() as container:
        trace = container.traces.get(trace_id)
    if trace is None:
        raise TraceNotFoundError(
            f"no trace with id {trace_id!r}", hint="list recent ids with `ragkeel traces`"
        )
    if as_json:
        typer.echo(json.dumps(trace.to_dict(), indent=2))
    else:
        _print_trace(trace, Console())


def _local_time(trace: Trace, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromtimestamp(trace.created_at).astimezone().strftime(fmt)


def _excerpt(text: str, width: int = _EXCERPT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _printer(console: Console) -> Callable[[str], None]:
    def line(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    return line


def _print_table(found: list[Trace]) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name, width in (("id", _SHORT_ID), ("time", 14), ("route", 8), ("outcome", 13)):
        table.add_column(name, no_wrap=True, min_width=width)
    table.add_column("model", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("ms", justify="right", no_wrap=True, min_width=5)
    table.add_column("tokens", justify="right", no_wrap=True, min_width=7)
    table.add_column("question", no_wrap=True, overflow="ellipsis")
    for t in found:
        table.add_row(
            t.id[:_SHORT_ID],
            _local_time(t, "%m-%d %H:%M:%S"),
            t.route,
            t.outcome,
            t.model or "-",
            _ms(t.total_ms),
            f"{t.input_tokens}+{t.output_tokens}",
            _excerpt(t.question),
        )
    console = Console()
    console.print(table)
    if not found:
        console.print("no traces recorded yet")


def _print_trace(t: Trace, console: Console) -> None:
    line = _printer(console)
    line(f"trace {t.id} · {_local_time(t)} · {t.route} · {t.outcome}")
    line(f"question: {t.question}")
    if t.error_code:
        line(f"error [{t.error_code}]: {t.error_message}")
    if t.degraded_reason:
        line(f"degraded ({t.degraded_reason}): {t.degraded_detail or '-'}")
    grounded = "-" if t.grounded is None else ("yes" if t.grounded else "NO")
    line(
        f"mode {t.mode or '-'} · model {t.model or '-'} · template {t.template_version or '-'} · "
        f"grounded {grounded} · tokens {t.input_tokens}+{t.output_tokens} · cost ${t.cost:.4f}"
    )
    _print_gate(t, line)
    _print_retrieved(t, console)
    stages = [f"{s} {t.latency_ms[s]:.1f}" for s in names.STAGES if s in t.latency_ms]
    line(f"stages (ms): {' · '.join(stages) or '-'}")
    _print_prompt(t, line)
    line("")
    line("output:")
    line(t.output or "-")
    for c in t.citations:
        page = f", p. {c.page}" if c.page else ""
        line(f"[{c.number}] {c.title or c.source}{page} — {c.source} ({c.chunk_id})")
        line(f"    {_excerpt(c.snippet, 160)}")


def _print_gate(t: Trace, line: Callable[[str], None]) -> None:
    g = t.gate
    if g is None:
        line("gate: -")
        return
    dense = "-" if g.top_dense is None else f"{g.top_dense:.3f}"
    keyword = "-" if g.top_keyword is None else f"{g.top_keyword:.2f}"
    limits = f"dense ≥ {g.dense_threshold}" + (
        f", bm25 ≥ {g.keyword_threshold}" if g.keyword_threshold is not None else ""
    )
    verdict = "passed" if g.passed else "refused"
    line(f"gate: {verdict} ({g.reason}) · top dense {dense} · top bm25 {keyword} · {limits}")


def _print_retrieved(t: Trace, console: Console) -> None:
    if not t.retrieved:
        console.print("retrieved: nothing", markup=False)
        return
    table = Table("#", "chunk", "document", "score", "bm25 #rank", "dense #rank", title="retrieved")
    for i, c in enumerate(t.retrieved, 1):
        table.add_row(
            str(i),
            c.chunk_id,
            c.document_id,
            f"{c.score:.3f}",
            f"{c.keyword_score:.2f} #{c.keyword_rank}" if c.keyword_rank else "-",
            f"{c.dense_score:.3f} #{c.dense_rank}" if c.dense_rank else "-",
        )
    console.print(table)


def _print_prompt(t: Trace, line: Callable[[str], None]) -> None:
    p = t.prompt
    if p is None:
        line("prompt: none (no model call)")
        return
    line(f"prompt: sha256 {p.sha256} · {p.chars} chars · {p.tokens} tokens")
    line(p.text if p.text is not None else "(text not kept: observability.keep_prompt_text)")
