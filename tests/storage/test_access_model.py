"""Tenants and ACLs of the SQLite store against a reference model (issue 11): seeded random
writes (upserts with random ACLs, deletes, ACL changes, relocations, each as a random caller)
across three tenants that reuse collection names and document ids, each followed by probes as
random callers, half of them on a second handle. Every document carries a unique canary word;
a probe checks that exactly what the caller may see comes back — by keyword, by dense search
(``k`` visible hits), by id, in listings — and that nothing else does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import AccessScope, Chunk, Document

TENANTS = ("default", "acme", "globex")
COLLECTIONS = ("kb", "hr")
DOC_IDS = tuple(f"d{i}" for i in range(6))
PRINCIPALS = ("alice", "bob", "hr", "eng")
DIM = 8
OPERATIONS = 250


@dataclass(frozen=True)
class Stored:
    canary: str
    chunk_id: str
    principals: frozenset[str]
    source: str


Key = tuple[str, str, str]  # tenant, collection, document id


def visible(scope: AccessScope, key: Key, doc: Stored) -> bool:
    return key[0] == scope.tenant and (
        scope.all_principals or not doc.principals or bool(doc.principals & scope.principals)
    )


def random_scope(rng: np.random.Generator) -> AccessScope:
    names = frozenset(p for p in PRINCIPALS if rng.random() < 0.3)
    return AccessScope(str(rng.choice(TENANTS)), names, all_principals=bool(rng.random() < 0.2))


def unit(i: int) -> npt.NDArray[np.float32]:
    v = np.zeros(DIM, np.float32)
    v[i % DIM] = 1.0
    return v


def test_what_each_caller_sees_matches_the_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    writer = SqliteDocumentStore(tmp_path / "s.db")
    reader = SqliteDocumentStore(tmp_path / "s.db")
    model: dict[Key, Stored] = {}
    probes = 0
    try:
        for n in range(OPERATIONS):
            key: Key = (
                str(rng.choice(TENANTS)),
                str(rng.choice(COLLECTIONS)),
                str(rng.choice(DOC_IDS)),
            )
            tenant, collection, doc_id = key
            actor = random_scope(rng)
            if rng.random() < 0.7:
                actor = AccessScope(tenant, actor.principals, actor.all_principals)
            op = rng.random()
            if op < 0.5 or key not in model:
                principals = frozenset(p for p in PRINCIPALS if rng.random() < 0.25)
                stored = Stored(f"canary{n}", f"{collection}-{doc_id}-{n}", principals, f"/s/{n}")
                text = f"{stored.canary} common words"
                doc = Document(
                    doc_id, collection, stored.source, "", text, f"h{n}", {}, tenant, principals
                )
                chunk = Chunk(stored.chunk_id, doc_id, collection, 0, text, 0, len(text))
                writer.upsert_document(doc, [chunk], unit(0)[None, :])
                model[key] = stored
            else:  # as a caller of any tenant: it may only reach its own tenant's document
                own: Key = (actor.tenant, collection, doc_id)
                may = own in model and visible(actor, own, model[own])
                if op < 0.7:
                    assert writer.delete_documents(collection, [doc_id], scope=actor) == int(may)
                    if may:
                        del model[own]
                elif op < 0.9:
                    principals = frozenset(p for p in PRINCIPALS if rng.random() < 0.25)
                    changed = writer.set_principals(collection, doc_id, principals, scope=actor)
                    assert changed == may
                    if may:
                        old = model[own]
                        model[own] = Stored(old.canary, old.chunk_id, principals, old.source)
                else:
                    moved = f"/moved/{n}"
                    assert writer.relocate_document(collection, doc_id, moved, scope=actor) == may
                    if may:
                        old = model[own]
                        model[own] = Stored(old.canary, old.chunk_id, old.principals, moved)
            for p in range(8):
                probes += 1
                store = reader if p % 2 else writer
                scope = random_scope(rng)
                mine = {k: d for k, d in model.items() if visible(scope, k, d)}
                target_key = list(model)[int(rng.integers(len(model)))]
                target = model[target_key]
                want = [target.chunk_id] if target_key in mine else []
                got = store.keyword.search(target.canary, 5, scope=scope)
                assert [h.chunk_id for h in got] == want, (n, scope, target_key)
                got_doc = store.get_document(target_key[1], target_key[2], scope=scope)
                expect = mine.get((scope.tenant, target_key[1], target_key[2]))
                if expect is None:
                    assert got_doc is None, (n, scope, target_key)
                else:
                    assert got_doc is not None and got_doc.text.startswith(f"{expect.canary} ")
                    assert (got_doc.principals, got_doc.source) == (
                        expect.principals,
                        expect.source,
                    )
                hits = store.vectors.search(unit(0), 4, scope=scope)
                assert len(hits) == min(4, len(mine))
                assert {h.chunk_id for h in hits} <= {d.chunk_id for d in mine.values()}
                chunks = store.get_chunks([d.chunk_id for d in model.values()], scope=scope)
                assert set(chunks) == {d.chunk_id for d in mine.values()}
                listed = store.documents_by_source(COLLECTIONS[p % 2], scope=scope)
                assert {(s, d) for s, ids in listed.items() for d in ids} == {
                    (doc.source, k[2]) for k, doc in mine.items() if k[1] == COLLECTIONS[p % 2]
                }
        assert probes >= 2000
        assert writer.check_integrity() == []
    finally:
        writer.close()
        reader.close()
