"""What happens to a generated answer the citation check finds unsupported (issue 11).

``generation.ungrounded`` chooses, for an answer that is not ``grounded`` (a sentence its cited
sources do not support, or a citation of no source) after the uncited sentences were
attributed where one source supports them (``citations.attribute_uncited``):

- ``as_is``: return it as generated; ``grounded: false`` and ``unsupported_sentences`` say
  what is wrong, the client decides.
- ``strip``: drop the unsupported sentences; when nothing of substance is left, fall back as
  ``extractive`` does.
- ``extractive``: replace it with the extractive answer (quoted source sentences), degraded
  with reason ``UNGROUNDED``.

Answers asked for JSON (an ``output_schema``) and refusals are left alone: a sentence cut out of
JSON breaks it. The default is ``as_is``: under the default prompt (``answer_v3``) the three
policies scored within one case of each other on answer quality and on injection success (the
injections that succeed are grounded: their goal token is in the source cited), so nothing is
replaced on no evidence. Figures: docs/benchmarks.md ("Issue 11: prompt injection", measured
with bench/prompt_injection.py, and "Issue 11: the ungrounded policy, decided with the
evaluation harness", paired ``ragkeel eval compare`` runs of ``evals/ungrounded-*.yaml``: no
delta of F1, gold-span, abstention or citation metrics distinguishable from 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ragkeel.generation.citations import CitationCheck
from ragkeel.generation.text import content_terms, strip_citations

UngroundedPolicy = Literal["as_is", "strip", "extractive"]
UNGROUNDED = "UNGROUNDED"  # degraded reason: the generated answer was not supported


def strip_sentences(text: str, sentences: Iterable[str]) -> str:
    """``text`` without each of ``sentences`` (its first occurrence), spaces tidied."""
    for sentence in sentences:
        text = text.replace(sentence, "", 1)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line).strip()


def apply_policy(
    policy: UngroundedPolicy, text: str, check: CitationCheck
) -> tuple[str, tuple[str, str] | None]:
    """``(text, degraded)``: the answer to return, and ``(UNGROUNDED, message)`` when it must be
    replaced by the extractive answer."""
    if policy == "as_is" or check.grounded or check.refusal:
        return text, None
    if policy == "strip":
        kept = strip_sentences(text, check.unsupported)
        if content_terms(strip_citations(kept)):
            return kept, None
    message = (
        f"{len(check.unsupported)} sentence(s) not supported by the sources they cite"
        f"{' and citations of no source' if check.invalid else ''}; answered extractively"
    )
    return text, (UNGROUNDED, message)
