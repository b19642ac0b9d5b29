"""Reply interpretation and quote stripping: pure domain, no I/O."""

import re
import string
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain import replies, reply_html
from domain.replies import (
    QUOTE_SENTINEL,
    Decision,
    ReplyVerdict,
    VerdictKind,
    extract_new_text,
    html_to_text,
    interpret_reply,
    normalize_text,
    strip_quoted_text,
)

REQUEST = (
    f"{QUOTE_SENTINEL}\n\nKære Karen Holm\n\n"
    "Skriv GODKEND eller AFVIS i første linje af dit svar.\n"
    "(English: reply with APPROVE or REJECT on the first line.)\n"
)


def quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


# --- interpret_reply -----------------------------------------------------------------------------

A, R = Decision.APPROVE, Decision.REJECT
NOT_KEYWORD = "first line is not a decision keyword"
QUESTION = "decision keyword followed by a question mark"
BOTH = "both keywords present"


@pytest.mark.parametrize(
    ("text", "decision", "comment"),
    [
        ("GODKEND", A, ""),
        ("godkend", A, ""),
        ("Godkendt.", A, ""),
        ("APPROVE", A, ""),
        ("Approved!", A, ""),
        ("AFVIS", R, ""),
        ("Afvist", R, ""),
        ("reject", R, ""),
        ("REJECTED.", R, ""),
        ("AFVIS - for dyrt", R, "for dyrt"),
        ("GODKEND – god idé", A, "god idé"),
        ("Godkendt: fint oplæg\nHusk controlleren.\n/K", A, "fint oplæg\nHusk controlleren.\n/K"),
        ("  GODKEND  \n\n  Mvh Karen  ", A, "Mvh Karen"),
        ("\n\n\u200bGODKEND", A, ""),
        ("\ufeffAFVIS\r\nManglende finansiering", R, "Manglende finansiering"),
        ("GODKEND\u2028Kommentar på ny linje", A, "Kommentar på ny linje"),
        ("GODKEND\u00a0fint", A, "fint"),
        ("AFVIS\nIkke prioriteret i år.", R, "Ikke prioriteret i år."),
        ("AFVIS – for dyrt\nIkke prioriteret i år. Vi tager den op igen.", R,
         "for dyrt\nIkke prioriteret i år. Vi tager den op igen."),
        ("GODKEND\nMen husk at orientere økonomi.", A, "Men husk at orientere økonomi."),
        ("Approve\nNot a cheap one, but worth it.", A, "Not a cheap one, but worth it."),
        ("ＧＯＤＫＥＮＤ", A, ""),  # fullwidth, folded by NFKC
    ],
)
def test_decision_keyword_on_first_line_decides(
    text: str, decision: Decision, comment: str
) -> None:
    verdict = interpret_reply(text)
    assert verdict.kind is VerdictKind.DECISION
    assert verdict.decision is decision
    assert verdict.comment == comment
    assert verdict.reason.startswith("first line starts with")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Ja", NOT_KEYWORD),
        ("Ja tak", NOT_KEYWORD),
        ("OK", NOT_KEYWORD),
        ("Jeg synes godt om det", NOT_KEYWORD),
        ("Godkendelse", NOT_KEYWORD),
        ("GODKENDER", NOT_KEYWORD),
        ("GOD KEND", NOT_KEYWORD),
        ("Hej\nGODKEND", NOT_KEYWORD),
        ("(GODKEND)", NOT_KEYWORD),
        ("GODKEND👍", NOT_KEYWORD),
        ("Godkend?", QUESTION),
        ("GODKEND ?", QUESTION),
        ("GODKEND - men hvorfor så dyrt?", QUESTION),  # was a decision before "a plain yes"
        ("approve?!", QUESTION),
        ("GODKEND\nAFVIS", BOTH),
        ("Approve\n\nbut reject the consultancy part", BOTH),
        ("GODKEND, men afvis posten til konsulenter", BOTH),
        ("AFVIS – det kræver en godkendelse fra direktionen", BOTH),
        ("REJECT\nI disapprove", BOTH),
        ("GODKEND\nA\u200bFVIS", BOTH),  # invisible char inside a keyword
        ("GODKEND\nAFVİS", BOTH),  # dotted capital I folds to i + mark
        ("Jeg kan ikke godkende det her", "negation 'ikke godkende'"),
        ("GODKEND\nnej tak alligevel", "negation 'nej tak'"),
        ("GODKEND ikke", "negation 'godkend ikke'"),
        ("Jeg godkender ikke", "negation 'godkender ikke'"),
        ("AFVIS\nmen ikke at afvise helt", "negation 'ikke at afvise'"),
        ("APPROVE\nActually I do not approve", "negation 'not approve'"),
        ("I don't approve", "negation 'don't approve'"),
        ("APPROVED\nwe can't really approve this", "negation 'can't really approve'"),
    ],
)
def test_anything_unclear_is_ambiguous_with_a_reason(text: str, reason: str) -> None:
    assert interpret_reply(text) == ReplyVerdict(
        kind=VerdictKind.AMBIGUOUS, decision=None, comment="", reason=reason
    )


@pytest.mark.parametrize("text", ["", "   ", "\n\n\r\n", "\u200b\ufeff\u00ad", "\u2028\t\x0b"])
def test_no_new_text_is_empty(text: str) -> None:
    verdict = interpret_reply(text)
    assert verdict.kind is VerdictKind.EMPTY
    assert verdict.decision is None


# --- normalize_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nb\rc\x0bd\x0ce\u2028f\u2029g\x85h", "a\nb\nc\nd\ne\nf\ng\nh"),
        ("GOD\u200bKEND\ufeff\u00ad\u2060", "GODKEND"),
        ("a\u00a0b\u202fc", "a b c"),
        ("ﬁne ＧＯＤＫＥＮＤ", "fine GODKEND"),
        ("e\u0301", "é"),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


# --- strip_quoted_text ---------------------------------------------------------------------------

NEW = "GODKEND\n\nMvh Karen"


B = "Bevilling <bevilling@bevilling.example.org>"
# What a client writes above the quoted request; the request (with both keywords) follows.
QUOTE_HEADS = {
    "gt-quote": quoted(REQUEST),
    "outlook-da": f"Fra: {B}\nSendt: 3. november 2025 10:12\nTil: Karen Holm\nEmne: x\n",
    "outlook-en": f"From: {B}\nSent: Monday, November 3, 2025 10:12 AM\nTo: Karen\nSubject: x",
    "outlook-mac-bold-wrapped": "*From:* Bevilling\n<bevilling@x.org>\n*Date:* Monday, 3 Nov",
    "original-message": "-----Original Message-----",
    "oprindelig": "-----Oprindelig meddelelse-----",
    "separator": "_" * 32,
    "gmail-da": f"Den man. 3. nov. 2025 kl. 10.12 skrev {B}:\n{quoted(REQUEST)}",
    "gmail-da-wrapped": "Den man. 3. nov. 2025 kl. 10.12 skrev Bevilling <\nbevilling@x.org>:\n> x",
    "gmail-da-no-den": f"man. 3. nov. 2025 kl. 10.12 skrev {B}:",
    "gmail-en": f"On Mon, Nov 3, 2025 at 10:12 AM {B} wrote:",
    "gmail-en-wrapped": f"On Mon, Nov 3, 2025 at 10:12 AM {B}\nwrote:\n",
    "apple-da": f"Den 3. nov. 2025 kl. 10.12 skrev {B}:\n",
    "apple-en": f"On 3 Nov 2025, at 10:12, {B} wrote:\n",
    "thunderbird": "Den 03-11-2025 kl. 10:12 skrev Bevilling:",
    "sentinel": "",
    "sentinel-mangled": "> " + QUOTE_SENTINEL.upper().replace("---", "—") + "\nAFVIS",
    "signature": "-- \nKaren Holm\nAfdelingschef\n",
    "iphone": "Sendt fra min iPhone\n",
    "outlook-ios": "Hent Outlook til iOS",
}


@pytest.mark.parametrize("head", QUOTE_HEADS.values(), ids=QUOTE_HEADS.keys())
def test_quote_is_cut_and_new_text_kept(head: str) -> None:
    quote = f"{head}\n{REQUEST}"
    assert strip_quoted_text(f"{NEW}\n\n{quote}") == NEW
    assert interpret_reply(strip_quoted_text(f"{NEW}\r\n\r\n{quote}")).decision is A


@pytest.mark.parametrize(
    "text",
    [
        "GODKEND\nFra: min side er det fint",  # "Fra:" without "Sendt:" is not a header block
        "GODKEND\nDen er god nok",
        "GODKEND\nOn reflection it is fine",
        "GODKEND\nBudget 2027: 1,3 mio. kr.",
        "GODKEND\n-- men husk opfølgning",
    ],
)
def test_ordinary_lines_are_not_cut(text: str) -> None:
    assert strip_quoted_text(text) == text


def test_only_a_quote_leaves_nothing() -> None:
    assert strip_quoted_text("\n\n" + quoted(REQUEST)) == ""
    assert interpret_reply(extract_new_text(plain=quoted(REQUEST), html=None)).kind is (
        VerdictKind.EMPTY
    )


def test_unknown_quote_header_falls_back_to_ambiguous_not_to_a_decision() -> None:
    text = "AFVIS\n\nVon: Bevilling\nGesendet: Montag\nBetreff: Godkendelse: STS-2027\n\n"
    # No sentinel either: the quoted request with both keywords stays in the "new" text.
    verdict = interpret_reply(strip_quoted_text(text + "Skriv GODKEND eller AFVIS"))
    assert verdict.kind is VerdictKind.AMBIGUOUS


# --- html_to_text --------------------------------------------------------------------------------

REQUEST_HTML = "<p>Skriv GODKEND eller AFVIS i første linje.</p><p>APPROVE or REJECT</p>"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param(
            '<div class="WordSection1"><p class="MsoNormal">GODKEND<o:p></o:p></p>'
            '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
            '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
            '<p class="MsoNormal"><b>Fra:</b> Bevilling<br><b>Sendt:</b> 3. november</p></div>'
            f"{REQUEST_HTML}</div>",
            "GODKEND",
            id="outlook-desktop",
        ),
        pytest.param(
            '<div style="border-top:solid #E1E1E1 1.0pt">Min signatur</div><p>GODKEND</p>',
            "Min signatur\nGODKEND",
            id="border-top-without-from-is-kept",
        ),
        pytest.param(
            '<div>AFVIS</div><div id="appendonsend"></div><hr>'
            f'<div id="divRplyFwdMsg"><b>Fra:</b> Bevilling</div><div>{REQUEST_HTML}</div>',
            "AFVIS",
            id="outlook-web",
        ),
        pytest.param(
            '<div>AFVIS</div><div id="divRplyFwdMsg"><b>Von:</b> B</div><p>x</p>' + REQUEST_HTML,
            "AFVIS",
            id="outlook-web-no-appendonsend",
        ),
        pytest.param(
            '<div dir="ltr">GODKEND</div><div class="gmail_quote"><div class="gmail_attr">Den '
            "man. 3. nov. 2025 skrev B:</div>"
            f'<blockquote class="gmail_quote">{REQUEST_HTML}</blockquote></div><p>efter</p>',
            "GODKEND\nefter",
            id="gmail",
        ),
        pytest.param(
            '<p>APPROVE</p><div class="moz-cite-prefix">On 11/3/25 wrote:<br></div>'
            f'<blockquote type="cite">{REQUEST_HTML}</blockquote>',
            "APPROVE",
            id="thunderbird",
        ),
        pytest.param(
            f'<div>Godkendt</div><blockquote type="cite"><div>{REQUEST_HTML}</div></blockquote>',
            "Godkendt",
            id="apple-mail",
        ),
        pytest.param(
            "<html><head><title>t</title><style>p {color: red}</style>"
            "<script>var x = 'AFVIS';</script></head><body><p>GODKEND</p></body></html>",
            "GODKEND",
            id="head-script-style-dropped",
        ),
        pytest.param("<head><title>x</title><body>GODKEND", "GODKEND", id="unclosed-head"),
        pytest.param(
            "GODKEND<br>linje 2<div>linje 3</div>",
            "GODKEND\nlinje 2\nlinje 3",
            id="blocks-become-lines",
        ),
        pytest.param(
            "<p>GODKEND   \n  med\tmellemrum</p>",
            "GODKEND med mellemrum",
            id="whitespace-collapses",
        ),
        pytest.param("<pre>a\n  b</pre>", "a\nb", id="pre-keeps-lines"),
        pytest.param("<p>GODKEND &amp; tak&#33;</p>", "GODKEND & tak!", id="entities"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_deeply_nested_html_does_not_recurse() -> None:
    html = "<div>" * 50_000 + "GODKEND" + "</div>" * 50_000
    assert html_to_text(html) == "GODKEND"


# --- extract_new_text ----------------------------------------------------------------------------


def test_extract_prefers_plain_and_falls_back_to_html() -> None:
    assert extract_new_text(plain="AFVIS\n" + quoted(REQUEST), html="<p>GODKEND</p>") == "AFVIS"
    html = f'<p>GODKEND</p><div class="gmail_quote">{REQUEST_HTML}</div>'
    assert extract_new_text(plain=" \n", html=html) == "GODKEND"
    assert extract_new_text(plain=None, html="<p>GODKEND</p>") == "GODKEND"
    assert extract_new_text(plain=None, html=None) == ""


# --- properties ----------------------------------------------------------------------------------

APPROVE_WORDS = ("godkend", "godkendt", "approve", "approved", "godkendelse", "approval")
REJECT_WORDS = ("afvis", "afvist", "reject", "rejected", "afvise", "rejection")
INVISIBLE = ("\u200b", "\ufeff", "\u00ad", "\u2060", "\u200e", "\u200d")
BLANK = (" ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\u2028", "\u2029", "\x85", "\u00a0")


@st.composite
def any_case(draw: st.DrawFn, words: tuple[str, ...]) -> str:
    word = draw(st.sampled_from(words))
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if up else c for c, up in zip(word, flips, strict=True))


@settings(max_examples=300)
@given(st.text())
def test_interpret_reply_never_raises_and_is_consistent(text: str) -> None:
    verdict = interpret_reply(text)
    assert (verdict.decision is not None) == (verdict.kind is VerdictKind.DECISION)
    assert verdict.reason


@settings(max_examples=200)
@given(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()))
def test_extract_new_text_never_raises(plain: str | None, html: str | None) -> None:
    assert isinstance(extract_new_text(plain=plain, html=html), str)


@settings(max_examples=200)
@given(
    st.text(alphabet=st.sampled_from(string.ascii_letters + "<>/=\"' !-&;#\n" + "".join(INVISIBLE)))
)
def test_html_to_text_never_raises_on_tag_soup(html: str) -> None:
    assert isinstance(html_to_text(html), str)


@settings(max_examples=500)
@given(
    approve=any_case(APPROVE_WORDS),
    reject=any_case(REJECT_WORDS),
    before=st.text(),
    between=st.text(),
    after=st.text(),
    reject_first=st.booleans(),
)
def test_both_keywords_anywhere_never_decide(
    approve: str, reject: str, before: str, between: str, after: str, reject_first: bool
) -> None:
    first, second = (reject, approve) if reject_first else (approve, reject)
    verdict = interpret_reply(before + first + between + second + after)
    assert verdict.kind is not VerdictKind.DECISION


@settings(max_examples=300)
@given(
    prefix=st.lists(st.sampled_from(INVISIBLE + BLANK), max_size=12).map("".join),
    keyword=st.sampled_from(
        [
            ("GODKEND", Decision.APPROVE),
            ("godkendt", Decision.APPROVE),
            ("Approve", Decision.APPROVE),
            ("APPROVED", Decision.APPROVE),
            ("afvis", Decision.REJECT),
            ("AFVIST", Decision.REJECT),
            ("Reject", Decision.REJECT),
            ("rejected", Decision.REJECT),
        ]
    ),
    suffix=st.sampled_from(["", ".", "!", " ", " - fint", ": god idé", "\n\nMvh Karen", "\u200b"]),
)
def test_keyword_after_blank_lines_and_invisible_chars_is_recognised(
    prefix: str, keyword: tuple[str, Decision], suffix: str
) -> None:
    word, decision = keyword
    verdict = interpret_reply(prefix + word + suffix)
    assert verdict.kind is VerdictKind.DECISION
    assert verdict.decision is decision


@settings(max_examples=200)
@given(new=st.sampled_from(["GODKEND", "AFVIS - nej", "Ja tak", ""]), tail=st.text())
def test_nothing_below_the_sentinel_changes_the_new_text(new: str, tail: str) -> None:
    expected = strip_quoted_text(new)
    assert strip_quoted_text(f"{new}\n{QUOTE_SENTINEL}\n{tail}") == expected


# --- the shortcuts against their plain definitions -----------------------------------------------

_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
odd_text = st.lists(
    st.one_of(
        st.sampled_from(
            [
                *"aæøåGODKEND \t\n\r\x0b\x0c\x1c\x85\u00a0\u2028\u2029\u200b\u200e\ufeff\u00ad",
                *["e\u0301", "\u0301", "ﬁ", "Ｇ", "K", "\u212a", "\r\n"],
            ]
        ),
        st.characters(),
    )
).map("".join)


def plain_normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return _BREAKS.sub("\n", text).replace("\u00a0", " ")


def plain_skeleton(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M"))
    return bare.casefold()


@settings(max_examples=500)
@given(odd_text)
@example("\r\r\n")  # two breaks: "\r", then "\r\n" (a replace-first shortcut made it one)
def test_normalize_text_is_its_plain_definition(text: str) -> None:
    assert normalize_text(text) == plain_normalize(text)


@settings(max_examples=500)
@given(odd_text)
def test_skeleton_is_its_plain_definition(text: str) -> None:
    assert replies._skeleton(text) == plain_skeleton(text)


class _UnstoppedParser(reply_html._ReplyTextParser):
    """The HTML reader without the early exit: it parses the whole document after a stop."""

    def _stop(self) -> None:
        self._stopped = True


def unstopped_html_to_text(html: str) -> str:
    parser = _UnstoppedParser()
    parser.feed(html)
    parser.close()
    lines = (line.strip() for line in normalize_text(parser.text()).split("\n"))
    return reply_html._BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


html_pieces = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<br>",
        '<div style="border-top:solid #E1E1E1 1.0pt">',
        '<div id="divRplyFwdMsg">',
        '<div id="appendonsend"></div>',
        '<div class="gmail_quote">',
        '<blockquote type="cite">',
        "</blockquote>",
        "<b>Fra:</b> Bevilling",
        "<b>From:</b> x",
        "Sendt: i dag",
        "GODKEND",
        "AFVIS",
        " tak ",
        "<head><title>t</title>",
        "<body>",
        "<pre>a\n b</pre>",
        "&amp;",
        "<!-- c -->",
        "<",
        ">",
    ]
)


@settings(max_examples=500)
@given(st.lists(html_pieces, max_size=25).map("".join))
def test_html_early_stop_changes_nothing(html: str) -> None:
    assert html_to_text(html) == unstopped_html_to_text(html)
