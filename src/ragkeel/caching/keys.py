"""The exact cache's key: what must be equal for a stored answer to be the answer.

``normalise_question`` — the one rule for "the same question": Unicode NFKC, case folded,
every run of whitespace made one space, and trailing punctuation and spaces dropped (``?``,
``!``, ``.``, ``…``, ``;``, ``:``, ``,`` and their full-width forms). Nothing else: words,
their order, numbers, inner punctuation and negations all stay, so "Is X safe" and "is  x
safe?" share an entry and "Is X not safe?" does not.

``answer_key`` hashes (SHA-256, hex) the normalised question with its ``bucket``: everything
else an answer depends on —

* who asks: the tenant and, unless the scope sees every principal, its sorted principals (an
  answer cites only what its asker may see, so two callers with different ACLs never share
  one);
* what is searched: the collection (or none: all of the tenant's), the filter, and the
  store's ``revision`` of those collections (``storage/base.py``: any write changes it, so an
  answer from before an ingest, delete, ACL change or re-embedding is never found again);
* how it is answered, per request: ``k``, the mode, the token budget (``max_tokens``,
  ``answer_tokens``), the output schema;
* how it is answered, per server: the ``fingerprint`` the container computes from every
  setting that changes answers (the answer policy — gate thresholds, context budget, packing,
  answer length, prompt template version, output checks —, retrieval's mode, fusion and
  weights, the embedder, the gateway's chain of deployments and its routing); a new
  configuration starts with an empty cache.

The bucket (a hash as well) is also the scope of the semantic cache: a similar question may
only reuse an answer made for the same bucket.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ragkeel.storage.filters import Filter
from ragkeel.types import AccessScope

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?!.…;:,？！。；：，、]+$")
KEY_VERSION = "answer-key-1"  # changes when the key's layout does: old entries are never read


def normalise_question(question: str) -> str:
    """The question as the exact cache compares it (see the module docstring)."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = _SPACE.sub(" ", text).strip()
    return _TRAILING.sub("", text)


@dataclass(frozen=True, slots=True)
class Bucket:
    """Everything but the question that an answer depends on (see the module docstring)."""

    scope: AccessScope
    flt: Filter | None
    revision: str
    fingerprint: str
    k: int
    mode: str
    max_tokens: int | None = None
    answer_tokens: int | None = None
    output_schema: Mapping[str, Any] | None = None

    def digest(self) -> str:
        scope = self.scope
        principals = None if scope.all_principals else sorted(scope.principals)
        flt = None
        if self.flt is not None:
            flt = {**asdict(self.flt), "metadata": dict(self.flt.metadata)}
        parts = {
            "v": KEY_VERSION,
            "tenant": scope.tenant,
            "principals": principals,
            "filter": flt,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "k": self.k,
            "mode": self.mode,
            "max_tokens": self.max_tokens,
            "answer_tokens": self.answer_tokens,
            "schema": self.output_schema,
        }
        return _sha256(parts)


def answer_key(question: str, bucket_digest: str) -> str:
    """The exact key of ``question`` (normalised here) in the bucket ``bucket_digest``."""
    return _sha256({"q": normalise_question(question), "b": bucket_digest})


def fingerprint(*parts: object) -> str:
    """A stable hash of configuration values (dataclasses, mappings, plain values)."""
    return _sha256([_plain(p) for p in parts])[:32]


def _plain(value: object) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    return value


def _sha256(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
