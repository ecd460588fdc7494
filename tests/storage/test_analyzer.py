"""The keyword analyzer per language (issue 15): English exactly as before, German with its
stemmer, stop words and Unicode normalisation, unknown languages refused."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
import Stemmer

from ragkeel.errors import ConfigError, LanguageError
from ragkeel.languages import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES, check_language
from ragkeel.settings import load_settings
from ragkeel.storage.analyzer import STOPWORDS, analyze, analyzer_for, stop_words_of

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "scifact"

# the analysis before issue 15, written out again: lower(), \w\w+ tokens, Lucene's English stop
# words, Snowball English stems. English must keep producing exactly these terms (the postings of
# every existing store, and the measured SciFact figures, depend on them).
_OLD_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_OLD_STEMMER = Stemmer.Stemmer("english")


def old_english(text: str) -> list[str]:
    words = [w for w in _OLD_TOKEN.findall(text.lower()) if w not in STOPWORDS]
    return [str(_OLD_STEMMER.stemWord(w)) for w in words]


EDGE_CASES = [
    "The STRASSE and the Straße are not the same word in English analysis",
    unicodedata.normalize("NFD", "café naïve Mädchen"),  # decomposed: split as before
    "Ｆｕｌｌ－ｗｉｄｔｈ ｌｅｔｔｅｒｓ, ligatures ﬁnance, superscripts x² and µ-opioid",
    "İstanbul DİYARBAKIR ǅemal ΣΊΣΥΦΟΣ",
    "it is not such a thing: the 10-Q's Q3 2022 revenue ($1,234) rose 5%",
]


def test_english_terms_are_unchanged_on_edge_cases() -> None:
    english = analyzer_for("english")
    for text in EDGE_CASES:
        assert english.analyze(text) == old_english(text)
        assert analyze(text) == old_english(text)


@pytest.mark.skipif(not SCIFACT.exists(), reason="needs ../shared/datasets/scifact")
def test_english_terms_are_unchanged_on_scifact() -> None:
    english = analyzer_for("english")
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        for n, line in enumerate(lines):
            if n == 1500:
                break
            doc = json.loads(line)
            text = f"{doc['title']}\n{doc['text']}"
            assert english.analyze(text) == old_english(text), doc["_id"]


def test_german_stems_inflections_together() -> None:
    german = analyzer_for("german")
    assert german.analyze("Häuser") == german.analyze("Haus") == ["haus"]
    assert german.analyze("Bäumen") == german.analyze("Baum")
    assert german.analyze("Kometen") == german.analyze("Komet")


def test_other_languages_normalise_before_analysis() -> None:
    german = analyzer_for("german")
    composed = german.analyze("Das Mädchen")
    assert german.analyze(unicodedata.normalize("NFD", "Das Mädchen")) == composed
    assert composed == german.analyze("DAS MÄDCHEN")
    assert german.analyze("Straße") == german.analyze("STRASSE") == german.analyze("strasse")
    assert german.analyze("Ｈａｕｓ") == ["haus"]  # full-width letters (NFKC)


def test_german_stop_words_come_normalised_from_the_stop_words_package() -> None:
    stop = stop_words_of("german")
    assert {"der", "die", "und", "zwischen", "über"} <= stop
    assert "dass" in stop and "daß" not in stop  # casefolded like the text
    german = analyzer_for("german")
    assert german.analyze("Der Hund und die Katze, daß") == ["hund", "katz"]


def test_english_keeps_lucenes_stop_words() -> None:
    assert stop_words_of("english") == STOPWORDS and len(STOPWORDS) == 33
    assert analyzer_for("English") is analyzer_for("english")


def test_a_language_without_a_stop_list_has_none() -> None:
    assert "tamil" in SUPPORTED_LANGUAGES
    assert stop_words_of("tamil") == frozenset()
    assert analyzer_for("tamil").analyze("ஒரு") == analyzer_for("tamil").analyze("ஒரு")


def test_languages_are_pystemmers_without_porter() -> None:
    assert set(SUPPORTED_LANGUAGES) == set(Stemmer.algorithms()) - {"porter"}
    assert DEFAULT_LANGUAGE == "english" and check_language(" German ") == "german"


def test_an_unknown_language_lists_the_supported_ones() -> None:
    for bad in ("klingon", "porter", "de", ""):
        with pytest.raises(LanguageError) as err:
            analyzer_for(bad)
        assert err.value.code == "LANGUAGE_UNSUPPORTED"
        assert err.value.hint is not None and "german" in err.value.hint


def test_retrieval_language_setting(tmp_path: Path) -> None:
    assert load_settings(home=tmp_path).retrieval.language == "english"
    assert load_settings(home=tmp_path, retrieval={"language": "German"}).retrieval.language == (
        "german"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(home=tmp_path, retrieval={"language": "klingon"})
    assert "retrieval.language" in str(err.value) and "german" in str(err.value)
