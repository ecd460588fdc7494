"""JSON (.json) and JSON Lines (.jsonl), including BEIR corpora.

.json is one document: the value is flattened to ``key.path: value`` lines (list items as
``key[0]``), one paragraph block per top-level key (``heading_path`` = that key).

.jsonl is streamed line by line, one document per record. BEIR mode (the file is named
``corpus.jsonl`` or its first record has ``_id`` and ``text``): ``external_id`` = ``_id``,
title = ``title`` (kept empty when the record has none, as in the data set), blocks = paragraphs
of ``text``, metadata = the other scalar fields (and those of a nested ``metadata`` object).
Generic mode: ``external_id`` from ``id``/``_id`` else ``line-N``; text from
``text``/``content``/``body`` else the flattened record. A bad line (invalid JSON, no text, a
repeated id) is a record error (``file:line``); the rest of the file is still ingested.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ragkeel.errors import DecodeError, EmptyDocumentError, IngestError, ParseError
from ragkeel.ingestion.parsers.base import (
    ParseOutcome,
    Source,
    build_document,
    first_line_title,
    shorten,
    split_paragraphs,
)
from ragkeel.ingestion.parsers.encoding import decode_bytes
from ragkeel.types import Block, MetaValue, ParsedDocument

__all__ = ["flatten", "parse_json", "parse_jsonl"]

_ID_KEYS = ("_id", "id")
_TEXT_KEYS = ("text", "content", "body")
_TITLE_KEYS = ("title", "name")


def parse_json(source: Source) -> ParseOutcome:
    text = decode_bytes(source.read_bytes(), source.name)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{source.name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            hint="fix the syntax there (a validator such as `python -m json.tool` shows it)",
        ) from exc
    except RecursionError as exc:
        raise _too_deep(source.name) from exc
    blocks = []
    try:
        for number, (key, lines) in enumerate(_top_level_groups(value), start=1):
            source.check_time(f"top-level item {number}")
            blocks.append(Block(text="\n".join(lines), heading_path=(key,) if key else ()))
    except RecursionError as exc:
        raise _too_deep(source.name) from exc
    title = _title_field(value) or source.path.stem
    return ParseOutcome([build_document(source.name, shorten(title), blocks)])


def _too_deep(name: str) -> ParseError:
    return ParseError(
        f"{name}: JSON nested too deeply to read", hint="flatten the structure and ingest again"
    )


def _top_level_groups(value: Any) -> Iterator[tuple[str, list[str]]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key), list(flatten(item, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield "", list(flatten(item, f"[{index}]"))
    else:
        yield "", list(flatten(value, ""))


def flatten(value: Any, prefix: str) -> Iterator[str]:
    """``key.path: value`` lines for every scalar inside ``value`` (lists indexed ``[i]``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{index}]")
    else:
        rendered = json.dumps(value) if value is None or isinstance(value, bool) else str(value)
        yield f"{prefix}: {rendered}" if prefix else rendered


def parse_jsonl(source: Source) -> ParseOutcome:
    documents: list[ParsedDocument] = []
    errors: list[tuple[str, IngestError]] = []
    seen_ids: set[str] = set()
    beir: bool | None = True if source.name.lower() == "corpus.jsonl" else None
    with source.path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            label = f"{source.name}:{number}"
            source.check_time(f"line {number}")
            if not raw.strip():
                continue
            try:
                record = _load_line(raw, number == 1, label)
                if beir is None:
                    beir = isinstance(record, dict) and "_id" in record and "text" in record
                document = _beir_record(record, label) if beir else _generic(record, number, label)
                if document.external_id in seen_ids:
                    raise ParseError(
                        f"{label}: duplicate id {document.external_id!r}",
                        hint="ids must be unique in a corpus; this record was skipped",
                    )
            except IngestError as exc:
                errors.append((label, exc))
                continue
            seen_ids.add(document.external_id or label)
            documents.append(document)
    if not documents:
        if errors:
            _, first = errors[0]
            raise ParseError(
                f"{source.name}: none of its {len(errors)} records could be read "
                f"(first problem: {first.message})",
                hint="check that the file really is JSON Lines: one JSON object per line",
            ) from first
        raise EmptyDocumentError(f"{source.name}: no records", hint="the file has only blank lines")
    return ParseOutcome(documents, errors)


def _load_line(raw: bytes, first: bool, label: str) -> Any:
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"{label}: the line is not valid UTF-8", hint="JSON Lines must be UTF-8; re-encode it"
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{label}: invalid JSON at column {exc.colno}: {exc.msg}",
            hint="fix or remove that line; the other lines were ingested",
        ) from exc
    except RecursionError as exc:
        raise ParseError(f"{label}: JSON nested too deeply", hint="flatten the record") from exc


def _beir_record(record: Any, label: str) -> ParsedDocument:
    if not isinstance(record, dict) or "_id" not in record:
        raise ParseError(
            f'{label}: a BEIR corpus record needs an "_id" and a "text" field',
            hint="fix or remove that line; the other lines were ingested",
        )
    text, title = _string(record.get("text")), _string(record.get("title"))
    blocks = [Block(text=p) for p in split_paragraphs(text)] or [Block(text=title)]
    metadata = _scalars(record, exclude={"_id", "title", "text", "metadata"})
    nested = record.get("metadata")
    if isinstance(nested, dict):
        metadata = {**_scalars(nested, exclude=set()), **metadata}
    return build_document(label, title, blocks, metadata=metadata, external_id=str(record["_id"]))


def _generic(record: Any, number: int, label: str) -> ParsedDocument:
    fields: Mapping[str, Any] = record if isinstance(record, dict) else {}
    external_id = next((str(fields[k]) for k in _ID_KEYS if _is_id(fields.get(k))), None)
    text_key = next((k for k in _TEXT_KEYS if isinstance(fields.get(k), str)), None)
    if text_key is not None:
        blocks = [Block(text=p) for p in split_paragraphs(fields[text_key])]
    else:
        blocks = [Block(text="\n".join(flatten(record, "")))]
    title = _title_field(fields) or first_line_title(blocks[0].text if blocks else "", label)
    exclude = {*_ID_KEYS, *_TITLE_KEYS, *([text_key] if text_key else [])}
    return build_document(
        label,
        shorten(title),
        blocks,
        metadata=_scalars(fields, exclude=exclude),
        external_id=external_id or f"line-{number}",
    )


def _title_field(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    return next(
        (" ".join(value[k].split()) for k in _TITLE_KEYS if isinstance(value.get(k), str)), ""
    )


def _string(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""


def _scalars(fields: Mapping[str, Any], *, exclude: set[str]) -> dict[str, MetaValue]:
    return {
        str(key): value
        for key, value in fields.items()
        if key not in exclude and isinstance(value, str | int | float | bool)
    }
