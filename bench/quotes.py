"""Quote cutting: our `strip_quoted_text` beside the `mail-parser-reply` package, reply by reply.

Every reply the tests know is cut by both; a cut is right when it leaves the new text the tests
expect:

- the `.eml` corpus replies (decision, ambiguous and empty outcomes in
  `tests/integration/test_inbound_parse.py`): the text the pipeline cuts (the plain part, else the
  HTML part as `html_to_text` reads it), cut and then read by `interpret_reply`, must give the
  expected kind, decision, reason and comment, as `test_corpus_outcome` checks;
- the quote heads of `tests/unit/test_replies.py` (`QUOTE_HEADS`): "GODKEND / Mvh Karen" above
  each client's quote must come out as exactly that; the ordinary lines of
  `test_ordinary_lines_are_not_cut` must stay; a reply that is only a quote must leave nothing;
  an unknown (German) quote head must end ambiguous, never as a decision.

Texts are compared line by line with blanks at line ends and around the text dropped (the
package strips every line). The package runs as `EmailReplyParser(languages=["da",
"en"]).parse_reply(text)`; it is not a dependency of the project: install it into the venv with
`pip install mail-parser-reply` to run this script.

    python -m bench.quotes [--rounds 50]
"""

import argparse
import importlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from domain.replies import VerdictKind, html_to_text, interpret_reply, strip_quoted_text
from mail.inbound_parse import parse_inbound
from tests.integration.test_inbound_parse import EXPECTED, raw_of
from tests.unit import test_replies

Cutter = Callable[[str], str]
REPLY_OUTCOMES = ("decision", "ambiguous", "empty")


@dataclass(frozen=True)
class Case:
    """One reply text and the rule its cut text must satisfy."""

    label: str
    text: str
    right: Callable[[str], bool]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().replace("\r\n", "\n").split("\n")]


def _exactly(expected: str) -> Callable[[str], bool]:
    return lambda cut: _lines(cut) == _lines(expected)


def _verdict_as_expected(name: str) -> Callable[[str], bool]:
    expected = EXPECTED[name]

    def right(cut: str) -> bool:
        verdict = interpret_reply(cut)
        if verdict.kind is not VerdictKind(expected.outcome):
            return False
        if verdict.decision is not expected.decision:
            return False
        if expected.reason is not None and verdict.reason != expected.reason:
            return False
        if expected.comment is not None:
            if expected.comment not in verdict.comment:
                return False
            if not expected.comment and verdict.comment != "":
                return False
        return True

    return right


def _never_a_decision(cut: str) -> bool:
    return interpret_reply(cut).kind is VerdictKind.AMBIGUOUS


def _parametrized(test: Callable[..., None]) -> list[str]:
    # The cases of a parametrized test, read from its mark (no copy of the list here).
    marks = getattr(test, "pytestmark", [])
    return [str(value) for mark in marks if mark.name == "parametrize" for value in mark.args[1]]


def corpus_cases() -> list[Case]:
    """The `.eml` replies, as the text `extract_new_text` hands to the cutter."""
    cases: list[Case] = []
    for name, expected in sorted(EXPECTED.items()):
        if expected.outcome not in REPLY_OUTCOMES:
            continue
        parsed = parse_inbound(raw_of(name))
        plain, html = parsed.plain_text, parsed.html_text
        text = plain if plain is not None and plain.strip() else html_to_text(html or "")
        cases.append(Case(f"eml {name}", text, _verdict_as_expected(name)))
    return cases


def unit_cases() -> list[Case]:
    """The plain-text replies of tests/unit/test_replies.py, with the new text they expect."""
    new, request = test_replies.NEW, test_replies.REQUEST
    cases = [
        Case(f"head {label}", f"{new}\n\n{head}\n{request}", _exactly(new))
        for label, head in test_replies.QUOTE_HEADS.items()
    ]
    cases += [
        Case(f"keep {text.splitlines()[1][:28]!r}", text, _exactly(text))
        for text in _parametrized(test_replies.test_ordinary_lines_are_not_cut)
    ]
    cases.append(Case("only a quote", "\n\n" + test_replies.quoted(request), _exactly("")))
    unknown = ("AFVIS\n\nVon: Bevilling\nGesendet: Montag\nBetreff: Godkendelse: STS-2027\n\n"
               "Skriv GODKEND eller AFVIS")
    cases.append(Case("unknown head (Von:) stays ambiguous", unknown, _never_a_decision))
    return cases


def package_cutter() -> Cutter | None:
    """mail-parser-reply's cut (Danish and English), or None where it is not installed."""
    try:
        package = importlib.import_module("mailparser_reply")
    except ImportError:
        return None
    parser = package.EmailReplyParser(languages=["da", "en"])

    def cut(text: str) -> str:
        return str(parser.parse_reply(text) or "")

    return cut


def mean_us(cutter: Cutter, texts: list[str], *, rounds: int) -> float:
    """Mean µs per message, the median of `rounds` passes over all texts."""
    per_round: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in texts:
            cutter(text)
        per_round.append((time.perf_counter() - start) * 1e6 / len(texts))
    return statistics.median(per_round)


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--rounds", type=int, default=50, help="timed passes over every reply")
    args = cli.parse_args()
    package = package_cutter()
    if package is None:
        raise SystemExit("mail-parser-reply is not installed: pip install mail-parser-reply")
    cutters: dict[str, Cutter] = {"ours": strip_quoted_text, "mail-parser-reply": package}
    cases = corpus_cases() + unit_cases()

    print("| reply | ours | mail-parser-reply |")
    print("|---|---|---|")
    right = dict.fromkeys(cutters, 0)
    for case in cases:
        marks = []
        for name, cutter in cutters.items():
            ok = case.right(cutter(case.text))
            right[name] += ok
            marks.append("right" if ok else "**wrong**")
        print(f"| {case.label} | {' | '.join(marks)} |")
    texts = [case.text for case in cases]
    timings = {name: mean_us(cutter, texts, rounds=args.rounds) for name, cutter in cutters.items()}
    print(f"| **right, of {len(cases)}** | " + " | ".join(
        f"**{right[name]}**" for name in cutters) + " |")
    print("| µs per message (mean over the replies, median of "
          f"{args.rounds} passes) | " + " | ".join(f"{timings[name]:.0f}" for name in cutters)
          + " |")
    # The decision the rule gives: the package only if it cuts every reply right.
    keep = "mail-parser-reply" if right["mail-parser-reply"] == len(cases) else "ours"
    print(f"\nkeep: {keep}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
