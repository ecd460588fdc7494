"""The word lists the rule-based condenser reads follow-up questions with (issue 15), English
and German. Data, not logic: ``condense_rules.py`` says what each list is for. Every list is
lowercase.
"""

from __future__ import annotations

from ragkeel.generation.text import FUNCTION_WORDS
from ragkeel.storage.analyzer import STOPWORDS


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# words that point back to something said before: always a reason to look back
POINTERS = _words(
    """
    it its itself they them their theirs themselves he him his himself she her hers herself
    er ihn ihm sie ihr ihre ihrem ihren ihrer ihres es sein seine seinem seinen seiner seines
    dessen deren dort dabei dafür dagegen damit danach davon dazu darauf daraus darin darüber
    """
)
# possessives may point to a name earlier in the same question ("was Elway in his prime")
POSSESSIVES = _words(
    "its their his her sein seine seinem seinen seiner seines ihr ihre ihrem ihren ihrer ihres"
)
# point back only as the question's last word ("wie lange dauert das?")
FINAL_POINTERS = _words("das")
# demonstratives: point back unless used as a relative pronoun ("the team that won")
DEMONSTRATIVES = _words("this that these those dies diese dieser dieses diesem diesen")
THERE = "there"  # points back unless existential ("is there", "there are")
BE = _words("is are was were be been being 's")
# a demonstrative right after one of these, or before one of AUXILIARIES, points back
PREPOSITIONS = _words(
    """
    about above after against along among around as at before behind below beside between
    beyond by during for from in inside into like near of off on onto out over since than
    through throughout to toward towards under until upon with within without
    """
)
AUXILIARIES = _words(
    """
    is are was were be been am do does did done has have had can could will would shall should
    may might must 's ist sind war waren wird werden wurde wurden hat haben hatte hatten kann
    """
)
LIGHT_VERBS = _words("mean means meant take takes took cost costs happen happens happened work")
# openings that leave out what the previous question said ("what about the Panthers?")
ELLIPSIS_CUES = (
    "and what about",
    "what about",
    "how about",
    "what of",
    "and for",
    "and in",
    "und was ist mit",
    "was ist mit",
    "wie ist es mit",
    "wie steht es mit",
    "und bei",
    "und für",
)
# openings that continue the previous question ("and who coached them?")
CONTINUATION_CUES = ("and", "also", "und", "auch")
ARTICLES = _words("the a an der die das den dem des ein eine einen einem einer")
QUESTION_WORDS = _words(
    """
    what which who whom whose when where why how was welche welcher welches welchen wer wen
    wem wessen wann wo warum wie weshalb wieso woher wohin
    """
)
GERMAN_FUNCTION_WORDS = _words(
    """
    aber als also am an auf aus bei bin bis bist da damit dann das dass dem den denn der des
    die doch du ein eine einem einen einer eines für gibt hat haben hatte hatten ich im in ist
    ja kann können konnte man mit muss nach nicht noch nur ob oder ohne sehr sich sind so über
    um und uns von vor war waren was weil wenn werden wie wir wird wurde wurden zu zum zur
    """
)
# not content: function words of both languages, question words, pointers
NOT_CONTENT = (
    STOPWORDS
    | frozenset(FUNCTION_WORDS.split())
    | GERMAN_FUNCTION_WORDS
    | QUESTION_WORDS
    | POINTERS
    | DEMONSTRATIVES
    | AUXILIARIES
    | frozenset({THERE, "i", "ich"})
)
