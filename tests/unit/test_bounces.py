"""Which delivery reports are ours (domain.bounces): only the one with the row's tag, id, rcpt."""

import base64
import secrets

from hypothesis import given
from hypothesis import strategies as st

from domain.bounces import BounceMismatch, bounce_mismatch

ROW_TAG = "k3f9abcd2345efgh"
ROW_ID = "<bev-0123456789abcdef0123@bevilling.example.org>"
KAREN = "karen.holm@kommune.example.org"
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def check(**overrides: object) -> BounceMismatch | None:
    values: dict[str, object] = {
        "claimed_tag": ROW_TAG, "row_tag": ROW_TAG, "original_message_id": ROW_ID,
        "row_message_id": ROW_ID, "recipients": (KAREN, None), "row_recipients": [KAREN]}
    values.update(overrides)
    return bounce_mismatch(**values)  # type: ignore[arg-type]


def test_our_own_report_matches() -> None:
    assert check() is None
    assert check(claimed_tag=ROW_TAG.upper(), original_message_id=f" {ROW_ID.upper()}",
                 recipients=(f"<{KAREN.upper()}>",)) is None


def test_each_missing_or_wrong_fact_is_named() -> None:
    assert check(claimed_tag=None) is BounceMismatch.NO_TAG
    assert check(row_tag=None) is BounceMismatch.ROW_UNTAGGED
    assert check(claimed_tag="a" * 16) is BounceMismatch.WRONG_TAG
    assert check(original_message_id=None) is BounceMismatch.NO_ORIGINAL_ID
    assert check(original_message_id="no angle brackets") is BounceMismatch.NO_ORIGINAL_ID
    assert check(original_message_id="<other@x>") is BounceMismatch.WRONG_ORIGINAL_ID
    assert check(recipients=(None, "")) is BounceMismatch.NO_RECIPIENT
    assert check(recipients=("forger@x.org",)) is BounceMismatch.WRONG_RECIPIENT


@given(st.text(alphabet=BASE32, min_size=16, max_size=16))
def test_a_random_bounce_tag_never_matches(tag: str) -> None:
    row_tag = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
    if tag != row_tag:  # 2**-80: the property is that nothing but equality matches
        assert check(claimed_tag=tag, row_tag=row_tag) is BounceMismatch.WRONG_TAG


@given(st.one_of(st.none(), st.text(max_size=40)))
def test_an_arbitrary_claimed_tag_never_matches(tag: str | None) -> None:
    if tag is None or tag.lower() != ROW_TAG:
        assert check(claimed_tag=tag) is not None
