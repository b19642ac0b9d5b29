"""Budget request lines in the database: the facts mails and routing read."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from models import RequestLine


@dataclass(frozen=True)
class LineFacts:
    """A request line as mails and routing need it."""

    year: int
    label: str
    amount: Decimal
    amount_max: Decimal | None
    recurring: bool

    @property
    def high(self) -> Decimal:
        """The upper end of the amount (the amount itself when it is not a range)."""
        return self.amount_max if self.amount_max is not None else self.amount


_LINES = (  # built once: every approval mail reads the lines
    select(RequestLine).where(col(RequestLine.request_id) == bindparam("request_id"))
    .order_by(col(RequestLine.position))
)


def request_lines(session: Session, request_id: int) -> list[LineFacts]:
    """The current lines of a request, in file order."""
    rows = session.execute(_LINES, {"request_id": request_id}).scalars()
    return [LineFacts(r.year, r.label, r.amount, r.amount_max, r.recurring) for r in rows]


def totals(lines: Sequence[LineFacts]) -> tuple[Decimal, Decimal]:
    """(total of the upper amounts, largest yearly sum) used by the policy thresholds."""
    per_year: dict[int, Decimal] = {}
    for line in lines:
        per_year[line.year] = per_year.get(line.year, Decimal(0)) + line.high
    return sum(per_year.values(), Decimal(0)), max(per_year.values(), default=Decimal(0))
