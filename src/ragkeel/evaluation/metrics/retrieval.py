"""Retrieval metrics with trec_eval semantics: pure functions, no I/O.

Every per-query value equals what ``trec_eval`` (via ``pytrec_eval``) reports; the tests check
this on random qrels and runs. The conventions, all taken from trec_eval:

- **Ranking.** A run gives each document a score. Documents are ranked by score, highest first;
  equal scores are ordered by document id, *descending* (trec_eval's ``comp_sim_docno`` in
  ``form_res_rels.c``: ``strcmp(ptr2->docno, ptr1->docno)``). trec_eval stores scores as C
  ``float``, so scores are compared **after rounding to float32**: 1.0 and 1.0 - 1e-9 tie, and
  every score above ~3.4e38 is +inf. Both rules were verified against pytrec_eval. Document ids
  compare as Python strings, which is ``strcmp`` order on their UTF-8 bytes.
- **Relevance.** A document is relevant when its grade is ``>= 1``. Grades ``<= 0`` and
  unjudged documents count as not relevant and give no gain.
- ``ndcg_cut_k``: gain is the grade itself (linear, not ``2**grade - 1``), discounted by
  ``log2(rank + 1)``; the ideal ranking is the judged grades sorted highest first, cut at k.
- ``recall_k``: relevant documents in the top k / all relevant documents of the query.
- ``P_k``: relevant documents in the top k / k, even when fewer than k documents were returned.
- ``mrr_k`` (alias ``recip_rank_k``): 1 / rank of the first relevant document in the top k, else 0.
  This is trec_eval's ``recip_rank`` on the run cut to its top k.

**Aggregation** (:func:`evaluate`) differs on purpose from pytrec_eval/BEIR. pytrec_eval only
scores queries present in *both* qrels and run, and BEIR averages over those, so a retriever that
returns nothing for a hard query is not penalised. Here the mean is taken over every query in the
qrels with at least one relevant document; a query missing from the run (or with an empty
result) scores 0 on every metric. Queries in the run but not in the qrels are ignored, as in BEIR.
When every qrels query is present in the run, the means equal BEIR's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ragkeel.errors import ConfigError, DatasetError

Qrels = Mapping[str, Mapping[str, int]]
"""query id -> document id -> graded relevance (``>= 1`` is relevant)."""
Run = Mapping[str, Mapping[str, float]]
"""query id -> document id -> retrieval score (higher is better)."""

DEFAULT_METRICS: tuple[str, ...] = ("ndcg_cut_10", "recall_10", "recall_100", "mrr_10", "P_10")

_RankedMetric = Callable[[Mapping[str, int], Sequence[str], int], float]


def trec_ranking(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval order: float32 score descending, then document id descending."""
    doc_ids = list(scores)
    with np.errstate(over="ignore"):  # beyond float32 range is +-inf, as in C
        sims = np.fromiter(scores.values(), np.float64, len(doc_ids)).astype(np.float32)
    if np.isnan(sims).any():
        bad = doc_ids[int(np.flatnonzero(np.isnan(sims))[0])]
        raise DatasetError(f"document {bad!r} has a NaN score; NaN cannot be ranked")
    return [doc_id for _, doc_id in sorted(zip(sims.tolist(), doc_ids, strict=True), reverse=True)]


def _ndcg(relevance: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    ideal = sorted((grade for grade in relevance.values() if grade > 0), reverse=True)[:k]
    ideal_dcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    if ideal_dcg == 0.0:
        return 0.0
    dcg = 0.0
    for rank, doc_id in enumerate(ranking[:k]):
        grade = relevance.get(doc_id, 0)
        if grade > 0:
            dcg += grade / math.log2(rank + 2)
    return dcg / ideal_dcg


def _hits(relevance: Mapping[str, int], ranking: Sequence[str], k: int) -> int:
    return sum(1 for doc_id in ranking[:k] if relevance.get(doc_id, 0) >= 1)


def _recall(relevance: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    n_relevant = sum(1 for grade in relevance.values() if grade >= 1)
    return _hits(relevance, ranking, k) / n_relevant if n_relevant else 0.0


def _precision(relevance: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    return _hits(relevance, ranking, k) / k


def _mrr(relevance: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if relevance.get(doc_id, 0) >= 1:
            return 1.0 / rank
    return 0.0


def _check_k(k: int) -> None:
    if k < 1:
        raise ConfigError(f"metric cutoff k must be >= 1, got {k}", hint="use e.g. k=10")


def ndcg_at_k(relevance: Mapping[str, int], scores: Mapping[str, float], k: int) -> float:
    """trec_eval ``ndcg_cut_k`` for one query (0 when the query has no relevant document)."""
    _check_k(k)
    return _ndcg(relevance, trec_ranking(scores), k)


def recall_at_k(relevance: Mapping[str, int], scores: Mapping[str, float], k: int) -> float:
    """trec_eval ``recall_k`` for one query (0 when the query has no relevant document)."""
    _check_k(k)
    return _recall(relevance, trec_ranking(scores), k)


def precision_at_k(relevance: Mapping[str, int], scores: Mapping[str, float], k: int) -> float:
    """trec_eval ``P_k`` for one query: always divided by k."""
    _check_k(k)
    return _precision(relevance, trec_ranking(scores), k)


def mrr_at_k(relevance: Mapping[str, int], scores: Mapping[str, float], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k, else 0."""
    _check_k(k)
    return _mrr(relevance, trec_ranking(scores), k)


_FAMILIES: dict[str, _RankedMetric] = {
    "ndcg_cut": _ndcg,
    "recall": _recall,
    "P": _precision,
    "mrr": _mrr,
    "recip_rank": _mrr,
}


def parse_metric(name: str) -> tuple[_RankedMetric, int]:
    """Split a metric name such as ``"ndcg_cut_10"`` into its function and cutoff."""
    family, _, cutoff = name.rpartition("_")
    if family not in _FAMILIES or not (cutoff.isascii() and cutoff.isdigit()) or int(cutoff) < 1:
        known = ", ".join(f"{f}_<k>" for f in _FAMILIES)
        raise ConfigError(f"unknown retrieval metric {name!r}", hint=f"use one of {known}")
    return _FAMILIES[family], int(cutoff)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Result of :func:`evaluate`: the means and every per-query value behind them."""

    means: dict[str, float]
    per_query: dict[str, dict[str, float]]

    @property
    def n_queries(self) -> int:
        """Number of queries the means are taken over."""
        return len(self.per_query)


def evaluated_queries(qrels: Qrels) -> list[str]:
    """Query ids that count in the means: those with at least one relevant document."""
    return [qid for qid, judged in qrels.items() if any(g >= 1 for g in judged.values())]


def evaluate(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS) -> Evaluation:
    """Score ``run`` against ``qrels``; see the module docstring for the averaging convention.

    Raises :class:`ConfigError` for an unknown metric name and :class:`DatasetError` when no
    query in ``qrels`` has a relevant document (there would be nothing to average).
    """
    parsed = {name: parse_metric(name) for name in metrics}
    query_ids = evaluated_queries(qrels)
    if not query_ids:
        raise DatasetError(
            "the qrels contain no query with a relevant document (grade >= 1)",
            hint="check that the qrels file and split are the ones you meant",
        )
    per_query: dict[str, dict[str, float]] = {}
    for qid in query_ids:
        ranking = trec_ranking(run.get(qid, {}))
        relevance = qrels[qid]
        per_query[qid] = {name: fn(relevance, ranking, k) for name, (fn, k) in parsed.items()}
    means = {
        name: math.fsum(values[name] for values in per_query.values()) / len(per_query)
        for name in parsed
    }
    return Evaluation(means=means, per_query=per_query)
