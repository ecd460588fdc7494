"""The semantic cache's guards (issue 14): per guard, hard negatives it must reject and
paraphrases that must pass every guard."""

from __future__ import annotations

import pytest

from ragkeel.caching.guards import ALL_GUARDS, Guard, conflict, facts, fold

HARD_NEGATIVES = [
    # negation
    (Guard.NEGATION, "Did Apple report a loss?", "Did Apple not report a loss?"),
    (Guard.NEGATION, "Does the Rhine flow through Basel?", "Doesn't the Rhine flow through Basel?"),
    (Guard.NEGATION, "Which teams won a title?", "Which teams never won a title?"),
    (
        Guard.NEGATION,
        "Oxidative DNA damage activates STING signalling.",
        "It is not true that oxidative DNA damage activates STING signalling.",
    ),
    # numbers, years, number words, ordinals
    (Guard.NUMBER, "Who won Super Bowl 50?", "Who won Super Bowl 51?"),
    (Guard.NUMBER, "What happened in Warsaw in 1944?", "What happened in Warsaw in 1945?"),
    (Guard.NUMBER, "Who were the two finalists?", "Who were the three finalists?"),
    (Guard.NUMBER, "What did the 1990s bring?", "What did the 1990 census bring?"),
    (Guard.NUMBER, "Who finished second in the race?", "Who finished third in the race?"),
    # dates: months, weekdays, quarters in any spelling
    (Guard.DATE, "What did Apple report in Q3 2022?", "What did Apple report in Q2 2022?"),
    (
        Guard.DATE,
        "What was revenue in the third quarter of 2022?",
        "What was revenue in the fourth quarter of 2022?",
    ),
    (Guard.DATE, "Which stores open in January?", "Which stores open in February?"),
    (Guard.DATE, "Is the museum open on Monday?", "Is the museum open on Sunday?"),
    # units and scales
    (Guard.UNIT, "Is it 5 km from the station?", "Is it 5 miles from the station?"),
    (Guard.UNIT, "Was the loss $3 million?", "Was the loss $3 billion?"),
    (Guard.UNIT, "How many years did the war last?", "How many days did the war last?"),
    (
        Guard.UNIT,
        "By how much did sales grow, in percent?",
        "By how much did sales grow, in dollars?",
    ),
    # named entities: names, acronyms, mixed case, quoted strings
    (
        Guard.ENTITY,
        "What was Apple's cash flow from operating activities?",
        "What was Amazon's cash flow from operating activities?",
    ),
    (Guard.ENTITY, "Who chairs the IPCC?", "Who chairs the WHO?"),
    (Guard.ENTITY, "When was the iPhone released?", "When was the iPad released?"),
    (Guard.ENTITY, 'What does "fair use" cover?', 'What does "fair dealing" cover?'),
    (Guard.ENTITY, "Where did Tesla work?", "Where did Tesla and Edison work?"),
    (Guard.ENTITY, "How many teams did Los Angeles have?", "How many teams did Chicago have?"),
    # comparatives, superlatives, order words
    (
        Guard.COMPARATIVE,
        "Who registered the most sacks on the team?",
        "Who registered the least sacks on the team?",
    ),
    (Guard.COMPARATIVE, "What happened before the war?", "What happened after the war?"),
    (Guard.COMPARATIVE, "Which is the largest city?", "Which is the smallest city?"),
    (Guard.COMPARATIVE, "Which is the largest city?", "Which is the oldest city?"),
    (Guard.COMPARATIVE, "Who was the youngest president?", "Who was the oldest president?"),
    # directions and valences
    (
        Guard.POLARITY,
        "Foxp3 enables the expression of regulators.",
        "Foxp3 represses the expression of regulators.",
    ),
    (
        Guard.POLARITY,
        "Port throughput is positively related to dengue diffusion.",
        "Port throughput is negatively related to dengue diffusion.",
    ),
    (
        Guard.POLARITY,
        "Granulomas form in the presence of TNF.",
        "Granulomas form in the absence of TNF.",
    ),
    (Guard.POLARITY, "Segmental aneuploidy is common.", "Segmental aneuploidy is rare."),
    # which side of a comparison
    (
        Guard.COMPARISON_ORDER,
        "Men are more susceptible to pneumonia when compared to women.",
        "Women are more susceptible to pneumonia when compared to men.",
    ),
    (
        Guard.COMPARISON_ORDER,
        "Omnivores produce more TMAO than vegans.",
        "Omnivores produce more TMAO than vegetarians.",
    ),
    # question word
    (Guard.QUESTION_WORD, "Who led the Panthers in sacks?", "When did the Panthers lead in sacks?"),
    (Guard.QUESTION_WORD, "How long is the Rhine?", "How old is the Rhine?"),
    (Guard.QUESTION_WORD, "Where was Tesla born?", "Why was Tesla born?"),
    (Guard.QUESTION_WORD, "How many people live in Fresno?", "Why do people live in Fresno?"),
    # content words: a different term, an added qualifier
    (
        Guard.CONTENT_WORDS,
        "Pk localizes to the anterior membrane of neuroectoderm cells.",
        "Pk localizes to the anterior membrane of notochord cells.",
    ),
    (
        Guard.CONTENT_WORDS,
        "Who sang the National Anthem at Super Bowl 50?",
        "Who sang the sign language version of the National Anthem at Super Bowl 50?",
    ),
    (Guard.CONTENT_WORDS, "Who is the chair of the IPCC?", "Who is the vice-chair of the IPCC?"),
]

PARAPHRASES = [
    ("How many points did the Panthers defense surrender?", "how many points did the panthers defense surrender"),
    ("Who led the Panthers in sacks?", "Can you tell me who led the Panthers in sacks, please?"),
    ("What was Apple's revenue in Q3 2022?", "I'd like to know what Apple's revenue was in the third quarter of 2022?"),
    ("What was Apple's revenue in Q3 2022?", "In Q3 2022, what was Apple's revenue?"),
    ("Did the company not pay a dividend?", "Didn't the company pay a dividend? Thanks!"),
    ("What kind of engine did Watt build?", "What type of engine did Watt build??"),
    ("Which is the largest city in Kenya?", "What is the biggest city in Kenya?"),
    ("When was the iPhone released?", "Quick question - when was the iPhone released?"),
    ("How many people lived in Warsaw in 1939?", "Hi, how many people lived in Warsaw in 1939?"),
    ("Is it 5 km from the station?", "is it 5 kilometres from the station"),
    ("Did sales grow by 10%?", "Did sales grow by 10 percent?"),
    ("What does the IPCC publish?", "what does the ipcc publish?"),
    ("Dexamethasone decreases risk of postoperative bleeding.", "Is it true that dexamethasone decreases risk of postoperative bleeding?"),
    ("Who chaired the meeting on Monday?", "On Monday, who chaired the meeting?"),
]  # fmt: skip


@pytest.mark.parametrize(("guard", "a", "b"), HARD_NEGATIVES)
def test_hard_negative_is_rejected_by_its_guard(guard: Guard, a: str, b: str) -> None:
    assert conflict(a, b) is guard
    assert conflict(b, a) is guard  # symmetric


@pytest.mark.parametrize(("guard", "a", "b"), HARD_NEGATIVES)
def test_the_same_question_twice_passes(guard: Guard, a: str, b: str) -> None:
    assert conflict(a, a) is None
    assert conflict(b, b) is None


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrase_passes_every_guard(a: str, b: str) -> None:
    assert conflict(a, b) is None
    assert conflict(b, a) is None


def test_each_guard_has_a_hard_negative_here() -> None:
    assert {guard for guard, _, _ in HARD_NEGATIVES} == set(Guard)


def test_only_the_chosen_guards_are_asked() -> None:
    a, b = "Did Apple report a loss in 2021?", "Did Apple not report a loss in 2022?"
    assert conflict(a, b) is Guard.NEGATION
    assert conflict(a, b, ALL_GUARDS - {Guard.NEGATION}) is Guard.NUMBER
    assert conflict(a, b, {Guard.ENTITY, Guard.QUESTION_WORD}) is None
    assert conflict(a, b, ()) is None


def test_synonym_swap_is_a_miss_by_design() -> None:
    """The content guard cannot tell a synonym from another term: when in doubt, miss."""
    a, b = "Where is the school located?", "Where is the school situated?"
    assert conflict(a, b) is Guard.CONTENT_WORDS
    assert conflict(a, b, ALL_GUARDS - {Guard.CONTENT_WORDS}) is None


def test_entities_compare_case_insensitively_as_whole_words() -> None:
    assert conflict("What did Apple report?", "what did apple report") is None
    assert conflict("What did Apple report?", "What did Pineapple report?") is Guard.ENTITY
    assert fold("Apple’s “U.S.” sales!") == "apple u s sales"


def test_facts_read_from_one_question() -> None:
    f = facts("How many km, in $ million, did NVIDIA's Q3 2022 fleet not drive since the 1990s?")
    assert f.negations == 1
    assert f.numbers == {"2022", "1990s"}
    assert f.dates == {"q3"}
    assert f.units == {"km", "usd", "e6"}
    assert "nvidia" in f.entities
    assert f.comparatives == {"since"}
    assert f.question_words == {"how-many"}
