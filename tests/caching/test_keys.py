"""The exact cache's key (``caching/keys.py``): the normalisation rule, and every part of the
key changing it — who asks (tenant, principals), what is searched (collection, filter, the
collections' revision), the configuration, and each per-request setting."""

from __future__ import annotations

import dataclasses

import pytest

from ragkeel.caching.keys import Bucket, answer_key, fingerprint, normalise_question
from ragkeel.storage.filters import Filter
from ragkeel.types import AccessScope

BASE = Bucket(
    scope=AccessScope("acme", frozenset({"alice"})),
    flt=Filter(collection="kb"),
    revision="kb:u1.3.1",
    fingerprint="cfg",
    k=8,
    mode="generative",
)


@pytest.mark.parametrize(
    ("asked", "same_as"),
    [
        ("How often should I rotate an API key?", "how often should i rotate an api key"),
        ("  how   often should I\trotate an API key ?! ", "how often should i rotate an api key"),
        ("ＡＰＩ　key rotation？", "api key rotation"),  # full-width forms (NFKC)
        ("Is 3.5% the rate...", "is 3.5% the rate"),
        ("Straße?", "strasse"),  # case folding, not just lower()
    ],
)
def test_the_normalisation_rule(asked: str, same_as: str) -> None:
    assert normalise_question(asked) == same_as


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Is the key revoked?", "Is the key not revoked?"),
        ("What happened in 2023?", "What happened in 2024?"),
        ("Who rotates keys, admins?", "Who rotates keys admins?"),  # inner punctuation stays
        ("rotate key every day", "every day rotate key"),
    ],
)
def test_what_normalisation_keeps_apart(a: str, b: str) -> None:
    assert normalise_question(a) != normalise_question(b)


def test_the_same_bucket_and_question_give_the_same_key() -> None:
    same = dataclasses.replace(BASE, scope=AccessScope("acme", frozenset({"alice"})))
    assert answer_key("Q?", BASE.digest()) == answer_key("q", same.digest())


@pytest.mark.parametrize(
    "change",
    [
        {"scope": AccessScope("other", frozenset({"alice"}))},
        {"scope": AccessScope("acme", frozenset({"bob"}))},
        {"scope": AccessScope("acme", frozenset({"alice", "bob"}))},
        {"scope": AccessScope("acme", frozenset({"alice"}), all_principals=True)},
        {"flt": Filter(collection="other")},
        {"flt": None},
        {"flt": Filter(collection="kb", sources=("/a.md",))},
        {"flt": Filter(collection="kb", metadata={"year": 2024})},
        {"revision": "kb:u1.4.1"},  # a write
        {"revision": "kb:u2.3.2"},  # a re-embedding's switch
        {"fingerprint": "cfg2"},
        {"k": 3},
        {"mode": "extractive"},
        {"max_tokens": 500},
        {"answer_tokens": 100},
        {"output_schema": {"type": "object"}},
    ],
)
def test_every_part_of_the_bucket_changes_the_key(change: dict[str, object]) -> None:
    other = dataclasses.replace(BASE, **change)  # type: ignore[arg-type]
    assert other.digest() != BASE.digest()
    assert answer_key("q", other.digest()) != answer_key("q", BASE.digest())


def test_a_scope_that_sees_every_principal_ignores_the_list() -> None:
    a = dataclasses.replace(BASE, scope=AccessScope("acme", frozenset({"x"}), True))
    b = dataclasses.replace(BASE, scope=AccessScope("acme", frozenset(), True))
    assert a.digest() == b.digest()


def test_fingerprints_are_stable_and_order_free_for_sets() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint(frozenset({"x", "y"})) == fingerprint(frozenset({"y", "x"}))
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
