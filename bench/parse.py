"""Reading one inbound reply: `parse_inbound` + `extract_new_text` + `interpret_reply`, timed.

Times the working tree's reader per message. With `--before REF` it also loads the parser and
reply modules of that git revision with `git show` into a throwaway package in a temp dir and runs
both in this process on the same bytes, interleaved per message (before, now, then now, before in
the next round), so that machine noise hits both alike; it checks first that both give the same
verdict on every input. `--before 57029d7` is the last revision with the hand-written fast path,
`--before ac19f68` the email-package parser before it.

Inputs: every `tests/fixtures/eml/*.eml` (placeholder token replaced, as the tests do) and
`--replies` plain "GODKEND" replies built by `bench.decisions.reply_bytes` from rendered
approval_request mails (a distinct token and Message-ID each).

The email-package parser remembers parsed header objects across calls (an lru_cache keyed on
name and value). A stream of real mail never repeats a Message-ID or DKIM signature, so that
cache is cleared before every call ("cold"); `--warm` keeps it, which flatters it on the
repeated fixtures.

    python -m bench.parse [--rounds 200] [--replies 20] [--before REF] [--warm]
"""

import argparse
import importlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import ModuleType

from bench.decisions import reply_bytes
from bench.support import PROJECT_ROOT
from mail.render import render_mail

CORPUS = PROJECT_ROOT / "tests" / "fixtures" / "eml"
PLACEHOLDER = b"a" * 26
TOKEN = b"k3fzq2m7x4b6nap2r5t7v2w4y6"
FILES = (
    "mail/inbound_parse.py",
    "domain/replies.py",
    "domain/reply_quotes.py",
    "domain/reply_html.py",
)

Pipeline = Callable[[bytes], object]


def load_old(revision: str, directory: Path) -> tuple[ModuleType, ModuleType]:
    """The baseline's parser and reply modules as package `bench_old_<rev>` in `directory`."""
    package = f"bench_old_{revision.replace('-', '_').replace('~', '_').replace('^', '_')}"
    root = directory / package
    git = shutil.which("git")
    if git is None:
        raise SystemExit("git is needed to load the old code")
    for relative in FILES:
        source = subprocess.run(
            [git, "show", f"{revision}:{relative}"],
            cwd=PROJECT_ROOT, check=True, capture_output=True, text=True,
        ).stdout
        source = source.replace("from domain.", f"from {package}.domain.")
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    for sub in ("", "mail", "domain"):
        (root / sub / "__init__.py").write_text("", encoding="utf-8")
    sys.path.insert(0, str(directory))
    return (
        importlib.import_module(f"{package}.mail.inbound_parse"),
        importlib.import_module(f"{package}.domain.replies"),
    )


def pipeline(parser: ModuleType, replies: ModuleType, *, cold: bool) -> Pipeline:
    parse_inbound = parser.parse_inbound
    error = parser.InboundParseError
    extract, interpret = replies.extract_new_text, replies.interpret_reply
    clear = getattr(getattr(parser, "_parsed_header", None), "cache_clear", None)

    def run(raw: bytes) -> object:
        if cold and clear is not None:
            clear()
        try:
            parsed = parse_inbound(raw)
        except error:
            return None
        verdict = interpret(extract(plain=parsed.plain_text, html=parsed.html_text))
        # Plain values: the two modules' classes never compare equal.
        return (str(verdict.kind), str(verdict.decision), verdict.comment, verdict.reason)

    return run


def approval_original(index: int) -> EmailMessage:
    """An approval_request mail as the outbox holds it (plain + HTML), with its own token."""
    context = {
        "lang": "da",
        "sentinel": "--- Skriv dit svar over denne linje / Write your reply above this line ---",
        "approver_name": "Karen Holm",
        "on_behalf_of_name": None,
        "confirm_url": f"https://bevilling.example.org/c/{index:06d}",
        "due_text": "fredag 7. november 2025",
        "stage_title": "Afdelingschef",
        "consult": False,
        "request": {
            "title": "Security Tech Space – finansiering 2027",
            "key": f"STS-2027-{index:05d}",
            "version": 1,
            "category_text": "Drift",
            "requester_name": "Mads Berg",
            "grant_key": None,
            "amounts_note": None,
            "justification": "Samling af sikkerhedsteknologi i ét projekt med fælles drift.\n"
            "Finansieres af rammen for Digitalisering.",
        },
        "lines": [
            {"year": year, "amount_text": "1.200.000 kr.", "kind_text": "Behov", "label": None}
            for year in (2026, 2027, 2028, 2029)
        ],
        "total_text": "4.800.000 kr.",
        "changes": [],
        "approved": [],
        "reminder": False,
    }
    rendered = render_mail(
        "approval_request", language="da", context=context, templates_dir=PROJECT_ROOT / "templates"
    )
    token = f"{index:026d}".translate(str.maketrans("0123456789", "abcdefghij"))
    message = EmailMessage(policy=default_policy)
    message["From"] = "Bevilling <bevilling@bevilling.example.org>"
    message["To"] = "karen.holm@kommune.example.org"
    message["Reply-To"] = f"approvals+{token}@bevilling.example.org"
    message["Subject"] = rendered.subject
    message["Message-ID"] = f"<ob-{index}.k3f9@bevilling.example.org>"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def inputs(replies: int) -> list[tuple[str, list[bytes]]]:
    found = [
        (path.stem, [path.read_bytes().replace(PLACEHOLDER, TOKEN)])
        for path in sorted(CORPUS.glob("*.eml"))
    ]
    godkend = [
        reply_bytes(approval_original(i), sender="karen.holm@kommune.example.org", text="GODKEND")
        for i in range(replies)
    ]
    return [*found, ("GODKEND reply (bench.decisions.reply_bytes)", godkend)]


def timed(run: Pipeline, raw: bytes) -> float:
    start = time.perf_counter()
    run(raw)
    return (time.perf_counter() - start) * 1e6


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--rounds", type=int, default=200)
    cli.add_argument("--replies", type=int, default=20, help="distinct GODKEND replies")
    cli.add_argument("--before", metavar="REF", help="also time the code of this git revision")
    cli.add_argument("--warm", action="store_true", help="keep the header cache warm")
    args = cli.parse_args()

    from domain import replies as new_replies
    from mail import inbound_parse as new_parser

    with tempfile.TemporaryDirectory(prefix="bench-parse-") as directory:
        runs = {"now": pipeline(new_parser, new_replies, cold=not args.warm)}
        if args.before:
            old_parser, old_replies = load_old(args.before, Path(directory))
            runs = {"before": pipeline(old_parser, old_replies, cold=not args.warm), **runs}
        cases = inputs(args.replies)
        for _, raws in cases:  # the same outcome, and warm-up
            for raw in raws:
                if len({repr(run(raw)) for run in runs.values()}) != 1:
                    print(f"outcomes differ for {raw[:60]!r}", file=sys.stderr)
                    return 1
        samples: dict[str, dict[str, list[float]]] = {
            label: {name: [] for name in runs} for label, _ in cases
        }
        order = list(runs.items())
        for round_number in range(args.rounds):
            for label, raws in cases:
                raw = raws[round_number % len(raws)]
                for name, run in order if round_number % 2 == 0 else order[::-1]:
                    samples[label][name].append(timed(run, raw))

    names = list(runs)
    what = f"before = {args.before}, now = working tree" if args.before else "working tree"
    print(f"{what}; {'warm' if args.warm else 'cold'} header cache; {args.rounds} rounds; µs per "
          "message for parse_inbound + extract_new_text + interpret_reply\n")
    print("| message | " + " | ".join(f"{n} median | {n} p90" for n in names) + " |")
    print("|---|" + "---:|---:|" * len(names))
    corpus: dict[str, list[float]] = {name: [] for name in names}
    for label, by_name in samples.items():
        cells = []
        for name in names:
            median = statistics.median(by_name[name])
            if not label.startswith("GODKEND"):
                corpus[name].append(median)
            cells.append(f"{median:.0f} | {p90(by_name[name]):.0f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("| **corpus: median / p90 of the per-file medians** | " + " | ".join(
        f"**{statistics.median(corpus[n]):.0f}** | {p90(corpus[n]):.0f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
