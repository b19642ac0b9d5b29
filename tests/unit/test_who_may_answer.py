"""Who may answer a step (`domain.answering.answerer_refusal`): the approver, the person the step
belongs to, or that person's direct substitute on the day; never the requester, never a
substitute's substitute. Properties over random delegation graphs."""

from dataclasses import dataclass
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.answering import answerer_refusal, principal_of
from domain.errors import Refusal

DAY = date(2026, 3, 2)


@dataclass(frozen=True)
class Step:
    approver_id: int
    on_behalf_of_id: int | None = None


@dataclass(frozen=True)
class Cover:
    person_id: int
    substitute_id: int
    starts: date
    ends: date


KAREN, OKONOMI, ERHVERV, DIRECTOR, VICE = 1, 2, 3, 4, 5


def test_the_approver_answers() -> None:
    assert answerer_refusal(Step(KAREN), person=KAREN, requester=ERHVERV, delegations=(),
                            day=DAY) is None


def test_a_direct_substitute_on_the_day_answers_and_not_the_day_after() -> None:
    cover = [Cover(KAREN, OKONOMI, DAY - timedelta(days=3), DAY)]
    assert answerer_refusal(Step(KAREN), person=OKONOMI, requester=ERHVERV, delegations=cover,
                            day=DAY) is None
    assert answerer_refusal(Step(KAREN), person=OKONOMI, requester=ERHVERV, delegations=cover,
                            day=DAY + timedelta(days=1)) is Refusal.NOT_APPROVER


def test_reproduction_a_substitutes_substitute_who_is_the_requester() -> None:
    """karen→okonomi, okonomi→erhverv; erhverv's request sits with okonomi on behalf of karen."""
    covers = [Cover(KAREN, OKONOMI, DAY, DAY), Cover(OKONOMI, ERHVERV, DAY, DAY)]
    step = Step(OKONOMI, on_behalf_of_id=KAREN)
    assert answerer_refusal(step, person=ERHVERV, requester=ERHVERV, delegations=covers,
                            day=DAY) is Refusal.REQUESTER
    # the same cascade for someone who is not the requester: still not theirs
    assert answerer_refusal(step, person=ERHVERV, requester=VICE, delegations=covers,
                            day=DAY) is Refusal.NOT_APPROVER
    assert answerer_refusal(step, person=KAREN, requester=ERHVERV, delegations=covers,
                            day=DAY) is None


def test_reproduction_the_requester_named_substitute_after_the_step_reached_the_director() -> None:
    covers = [Cover(DIRECTOR, VICE, DAY, DAY + timedelta(days=10))]
    assert answerer_refusal(Step(DIRECTOR), person=VICE, requester=VICE, delegations=covers,
                            day=DAY) is Refusal.REQUESTER


def test_a_step_given_to_the_requester_is_still_refused() -> None:
    assert answerer_refusal(Step(VICE), person=VICE, requester=VICE, delegations=(),
                            day=DAY) is Refusal.REQUESTER


def test_an_unknown_sender_is_not_the_approver() -> None:
    assert answerer_refusal(Step(KAREN), person=None, requester=VICE, delegations=(),
                            day=DAY) is Refusal.NOT_APPROVER


def test_delegations_are_not_read_when_the_approver_answers() -> None:
    def exploding() -> list[Cover]:
        raise AssertionError("read")

    class Lazy:
        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(exploding())

    assert answerer_refusal(Step(KAREN), person=KAREN, requester=VICE, delegations=Lazy(),
                            day=DAY) is None


PEOPLE = st.integers(min_value=1, max_value=7)
COVERS = st.lists(
    st.builds(lambda p, s, a, b: Cover(p, s, DAY + timedelta(days=min(a, b)),
                                       DAY + timedelta(days=max(a, b))),
              PEOPLE, PEOPLE, st.integers(-5, 5), st.integers(-5, 5)),
    max_size=12)


@given(covers=COVERS, requester=PEOPLE, approver=PEOPLE, behalf=st.none() | PEOPLE,
       person=PEOPLE, offset=st.integers(-6, 6))
def test_no_requester_ever_decides_their_own_request(
    covers: list[Cover], requester: int, approver: int, behalf: int | None, person: int,
    offset: int,
) -> None:
    day = DAY + timedelta(days=offset)
    step = Step(approver, behalf)
    refusal = answerer_refusal(step, person=person, requester=requester, delegations=covers,
                               day=day)
    if person == requester:
        assert refusal is Refusal.REQUESTER
    if refusal is None:
        principal = principal_of(step)
        direct = {c.substitute_id for c in covers
                  if c.person_id == principal and c.starts <= day <= c.ends}
        assert person in {approver, principal} | direct
        assert person != requester


@given(covers=COVERS, requester=PEOPLE, original=PEOPLE, person=PEOPLE, offset=st.integers(-6, 6))
def test_never_a_substitutes_substitute(
    covers: list[Cover], requester: int, original: int, person: int, offset: int,
) -> None:
    """Whatever graph: a person reachable only through two delegations is refused."""
    day = DAY + timedelta(days=offset)
    today = [c for c in covers if c.starts <= day <= c.ends]
    first = {c.substitute_id for c in today if c.person_id == original}
    second = {c.substitute_id for c in today if c.person_id in first} - first - {original}
    for substitute in first - {original}:
        step = Step(substitute, on_behalf_of_id=original)
        if person in second and person != substitute:
            assert answerer_refusal(step, person=person, requester=requester,
                                    delegations=covers, day=day) is not None
