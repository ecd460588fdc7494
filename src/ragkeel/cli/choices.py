"""Enums for CLI options (typer renders them as choices)."""

from __future__ import annotations

from enum import StrEnum

from ragkeel.retrieval.hybrid import Mode


class ModeChoice(StrEnum):
    bm25 = "bm25"
    dense = "dense"
    hybrid = "hybrid"


def as_mode(choice: ModeChoice) -> Mode:
    return _MODES[choice]


_MODES: dict[ModeChoice, Mode] = {
    ModeChoice.bm25: "bm25",
    ModeChoice.dense: "dense",
    ModeChoice.hybrid: "hybrid",
}
