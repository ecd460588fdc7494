"""Which collections a dense query may search, given the embedding model it was embedded with
(both stores' ``VectorIndex.search(model=)``, issue 15).

A collection records the model its vectors came from (``embedding_model``, set by its first
vectors; writes of another model are refused). A query vector of one model compared with
another model's vectors ranks noise, so:

* a search of one named collection indexed with another model is refused;
* a search of every collection of the tenant skips the collections of other models when at
  least one collection is of the query's model (a tenant may keep collections of several
  models on purpose, each searched by name), and is refused when none is: the whole index is of
  another model (the embedding settings changed, or a process still runs the old model after
  ``ragkeel collections reembed`` switched it);
* collections with no vectors yet (no model recorded) are searched: they find nothing.

The refusal is ``EmbeddingModelMismatchError`` (EMBEDDING_MODEL_MISMATCH) naming the
collection, its model and the query's, and what to do: re-embed the collection with
``ragkeel collections reembed``, or run with the embedding settings it was built with. Before
issue 15 both cases quietly searched nothing on the dense side, and answers fell back on
keywords alone or could not be answered, with no sign of why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ragkeel.errors import EmbeddingModelMismatchError

T = TypeVar("T")


def searchable(
    model: str | None, collections: Sequence[tuple[T, str, str | None]], *, named: bool
) -> list[T]:
    """The items of ``collections`` (item, collection name, its embedding model) a query of
    ``model`` searches (None: every one); ``named``: the search names one collection."""
    if model is None:
        return [item for item, _, _ in collections]
    other = [(name, m) for _, name, m in collections if m is not None and m != model]
    if other and (named or not any(m == model for _, _, m in collections)):
        raise _mismatch(model, other)
    return [item for item, _, m in collections if m in (None, model)]


def _mismatch(model: str, other: Sequence[tuple[str, str]]) -> EmbeddingModelMismatchError:
    if len(other) == 1:
        name, built = other[0]
        what = f"collection {name!r} was indexed with the embedding model {built}"
        target = name
    else:
        listed = ", ".join(f"{n!r} ({m})" for n, m in other[:5])
        more = f" and {len(other) - 5} more" if len(other) > 5 else ""
        what = f"collections {listed}{more} were indexed with other embedding models"
        target = "NAME"
    return EmbeddingModelMismatchError(
        f"{what}; this query is embedded with {model}: its vectors cannot be compared",
        hint=f"move the collection to this model with `ragkeel collections reembed {target}`, "
        "or run with the embedding settings it was built with (`ragkeel collections list` "
        "shows each collection's model)",
    )
