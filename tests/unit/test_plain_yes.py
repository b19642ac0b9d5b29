"""Only a plain yes is a yes: a keyword with doubt on its line, or taken back below, never decides.

Examples from the issue "Hostile mail and hostile files" (each was an approval before), and the
forms real mailboxes write: Outlook, Gmail and Apple put the typed text first, as here.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.replies import DOUBT_WORDS, RETRACTIONS, Decision, VerdictKind, interpret_reply

YES_BUT = [
    "Godkend – ikke endnu",
    "GODKEND, ikke",
    "APPROVE - not yet",
    "GODKEND (ikke)",
    "Godkendt! Nej vent.",
    "GODKEND \u0456kke",  # Cyrillic і
    "GODKEND \u0456\u043a\u043ae",  # Cyrillic іkk
    "GODKEND — \u03bfk",  # Greek omicron
    "GODKEND, men først efter mødet",
    "GODKEND hvis budgettet holder",
    "Godkendt, når økonomi har set på det – vent med at sende",
    "GODKEND måske",
    "GODKEND MAASKE".replace("AA", "Å"),
    "Approve, but only the first year",
    "APPROVED unless finance objects",
    "Approve if the amount stays under 1 mio.",
    "approve — wait",
    "Approve, pending legal review",
    "AFVIS – endnu ikke klar",
    "AFVIS, men kun for 2026",
    "Reject for now? Not sure",
    "GODKEND\u200b i\u200bkke",  # zero-width inside the doubt word
    "ＧＯＤＫＥＮＤ ＩＫＫＥ",  # fullwidth, folded by NFKC
    "GODKEND... eller nej",
    "GODKEND ej",
]

TAKEN_BACK = [
    "GODKEND\nNej vent, jeg skal lige tale med Mads.",
    "GODKEND\nnej, vent",
    "Godkendt\n\nIkke alligevel – vi tager den på mødet.",
    "GODKEND\nFortryd, jeg har trykket for hurtigt.",
    "APPROVE\nActually, not after all.",
    "Approve\nWait, no. Let's talk first.",
    "Approved\nScratch that, I need to check the numbers.",
    "AFVIS\nGlem det, den er fin.",
    "AFVIS\nJeg kan godt godkende den alligevel",  # the other keyword below
]

PLAIN = [
    ("AFVIS\nIkke prioriteret i år.", Decision.REJECT),
    ("AFVIS\n\nIkke prioriteret i år.\nMvh Karen", Decision.REJECT),
    ("GODKEND", Decision.APPROVE),
    ("GODKEND.", Decision.APPROVE),
    ("Godkendt – fint oplæg", Decision.APPROVE),
    ("GODKEND!\nHusk at orientere økonomi.", Decision.APPROVE),
    ("Approved: good proposal", Decision.APPROVE),
    ("APPROVE\nNot cheap, but worth it.", Decision.APPROVE),
    ("Afvist: for dyrt i forhold til effekten", Decision.REJECT),
    ("REJECT\nNo budget left this year.", Decision.REJECT),
]


@pytest.mark.parametrize("text", YES_BUT)
def test_doubt_on_the_keyword_line_is_ambiguous(text: str) -> None:
    verdict = interpret_reply(text)
    assert verdict.kind is VerdictKind.AMBIGUOUS, verdict


@pytest.mark.parametrize("text", TAKEN_BACK)
def test_a_later_line_that_takes_it_back_is_ambiguous(text: str) -> None:
    verdict = interpret_reply(text)
    assert verdict.kind is VerdictKind.AMBIGUOUS, verdict


@pytest.mark.parametrize(("text", "decision"), PLAIN)
def test_a_plain_keyword_with_an_ordinary_comment_decides(text: str, decision: Decision) -> None:
    verdict = interpret_reply(text)
    assert verdict.kind is VerdictKind.DECISION, verdict
    assert verdict.decision is decision


KEYWORDS = ("GODKEND", "godkendt", "Approve", "APPROVED", "afvis", "AFVIST", "Reject", "rejected")
BEFORE = (" ", ", ", " – ", " - ", ": ", "! ", ". ", " (", "\t")
AFTER = (" ", ".", ")", "!", ",", "\t")
INVISIBLE = ("\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad")
_NO_BREAK = st.characters(blacklist_categories=("Zl", "Zp", "Cc", "Cs"),
                          blacklist_characters="\x85")


@st.composite
def disguised(draw: st.DrawFn, words: tuple[str, ...]) -> str:
    """A word in random case with invisible characters between its letters."""
    word = draw(st.sampled_from(words))
    out = []
    for ch in word:
        out.append(ch.upper() if draw(st.booleans()) else ch)
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from(INVISIBLE)))
    return "".join(out)


@settings(max_examples=500)
@given(
    keyword=st.sampled_from(KEYWORDS),
    before=st.sampled_from(BEFORE),
    filler=st.text(_NO_BREAK, max_size=30),
    doubt=disguised(DOUBT_WORDS),
    after=st.sampled_from(AFTER),
    tail=st.text(_NO_BREAK, max_size=30),
    below=st.text(max_size=60),
)
def test_keyword_then_a_doubt_word_on_its_line_never_decides(
    keyword: str, before: str, filler: str, doubt: str, after: str, tail: str, below: str,
) -> None:
    first_line = f"{keyword}{before}{filler} {doubt}{after}{tail}"
    verdict = interpret_reply(f"{first_line}\n{below}")
    assert verdict.kind is not VerdictKind.DECISION, (first_line, verdict)


@settings(max_examples=300)
@given(
    keyword=st.sampled_from(KEYWORDS),
    comment=st.sampled_from(["", "Mvh Karen", "Ikke prioriteret i år.", "Fint."]),
    retraction=disguised(RETRACTIONS),
    after=st.sampled_from(AFTER),
)
def test_a_retraction_below_never_decides(
    keyword: str, comment: str, retraction: str, after: str,
) -> None:
    verdict = interpret_reply(f"{keyword}\n{comment}\n{retraction}{after}")
    assert verdict.kind is not VerdictKind.DECISION, verdict
