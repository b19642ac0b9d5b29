"""Reading one inbound reply: `parse_inbound` + `extract_new_text` + `interpret_reply`, old vs new.

"old" is the code of a baseline revision (default ac19f68, the last commit before the fast path),
loaded with `git show` into a throwaway package in a temp dir; "new" is the working tree. Both run
in this process on the same bytes, interleaved per message (old, new, then new, old in the next
round), so that machine noise hits both alike.

Inputs: every `tests/fixtures/eml/*.eml` (placeholder token replaced, as the tests do) and
`--replies` plain "GODKEND" replies built by `bench.decisions.reply_bytes` from rendered
approval_request mails (a distinct token and Message-ID each).

The old parser remembers parsed header objects across calls (an lru_cache keyed on name and
value). A stream of real mail never repeats a Message-ID or DKIM signature, so that cache is
cleared before every old call ("cold"); `--warm` keeps it, which flatters the old code on the
repeated fixtures. The new code keeps no per-message cache.

    python -m bench.parse [--rounds 200] [--replies 20] [--old REV] [--warm]
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

BASELINE = "ac19f68"
CORPUS = PROJECT_ROOT / "tests" / "fixtures" / "eml"
PLACEHOLDER = b"a" * 26
TOKEN = b"k3fzq2m7x4b6nap2r5t7v2w4y6"
FILES = (
    "mail/inbound_parse.py",
    "domain/replies.py",
    "domain/reply_quotes.py",
    "domain/reply_html.py",
)
TARGET_US = 350.0

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
    cli.add_argument("--old", default=BASELINE, help="git revision of the old code")
    cli.add_argument("--warm", action="store_true", help="keep the old header cache warm")
    args = cli.parse_args()

    from domain import replies as new_replies
    from mail import inbound_parse as new_parser

    with tempfile.TemporaryDirectory(prefix="bench-parse-") as directory:
        old_parser, old_replies = load_old(args.old, Path(directory))
        old = pipeline(old_parser, old_replies, cold=not args.warm)
        new = pipeline(new_parser, new_replies, cold=False)
        cases = inputs(args.replies)
        for _, raws in cases:  # same outcome, and warm-up
            for raw in raws:
                if old(raw) != new(raw):
                    print(f"outcomes differ for {raw[:60]!r}", file=sys.stderr)
                    return 1
        samples: dict[str, tuple[list[float], list[float]]] = {
            label: ([], []) for label, _ in cases
        }
        for round_number in range(args.rounds):
            for label, raws in cases:
                raw = raws[round_number % len(raws)]
                old_times, new_times = samples[label]
                if round_number % 2:
                    new_times.append(timed(new, raw))
                    old_times.append(timed(old, raw))
                else:
                    old_times.append(timed(old, raw))
                    new_times.append(timed(new, raw))

    print(f"old = {args.old} ({'warm' if args.warm else 'cold'} header cache), new = working "
          f"tree; {args.rounds} interleaved rounds; µs per message for parse_inbound + "
          "extract_new_text + interpret_reply\n")
    print("| message | old median | new median | old p90 | new p90 | old/new |")
    print("|---|---:|---:|---:|---:|---:|")
    corpus_old: list[float] = []
    corpus_new: list[float] = []
    for label, (old_times, new_times) in samples.items():
        old_median, new_median = statistics.median(old_times), statistics.median(new_times)
        if not label.startswith("GODKEND"):
            corpus_old.append(old_median)
            corpus_new.append(new_median)
        print(f"| {label} | {old_median:.0f} | {new_median:.0f} | {p90(old_times):.0f} | "
              f"{p90(new_times):.0f} | {old_median / new_median:.1f}× |")
    old_median, new_median = statistics.median(corpus_old), statistics.median(corpus_new)
    print(f"| **corpus: median / p90 of the per-file medians** | **{old_median:.0f}** | "
          f"**{new_median:.0f}** | {p90(corpus_old):.0f} | {p90(corpus_new):.0f} | "
          f"**{old_median / new_median:.1f}×** |")
    godkend_new = samples["GODKEND reply (bench.decisions.reply_bytes)"][1]
    ok = new_median <= TARGET_US and statistics.median(godkend_new) <= TARGET_US
    print(f"\ntarget ≤ {TARGET_US:.0f} µs (corpus median and GODKEND reply): "
          f"{'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
