"""Escalation chains always end and never return to anyone (property over random org charts)."""

from hypothesis import given
from hypothesis import strategies as st

from domain.escalation_chain import next_in_chain


@given(st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.lists(st.integers(0, n - 1), max_size=4), min_size=n, max_size=n),
    st.integers(0, n - 1), st.integers(0, n - 1))))
def test_every_chain_ends_without_repeating_or_reaching_the_requester(
    case: tuple[int, list[list[int]], int, int],
) -> None:
    people, candidates_of, first, requester = case
    had = {first}
    holder, chain = first, [first]
    for _ in range(people + 1):
        target = next_in_chain(candidates_of[holder], had=had, requester=requester)
        if target is None:
            break
        assert target != requester
        assert target not in had
        had.add(target)
        chain.append(target)
        holder = target
    else:
        raise AssertionError(f"chain did not end: {chain}")
    assert len(chain) == len(set(chain)) <= people


def test_the_loop_from_the_issue_stops() -> None:
    """vicedirektoer → stadsdirektoer → vicedirektoer: the second hop has nowhere to go."""
    vice, director = 1, 2
    assert next_in_chain([director], had={vice}, requester=9) == director
    assert next_in_chain([vice], had={vice, director}, requester=9) is None
