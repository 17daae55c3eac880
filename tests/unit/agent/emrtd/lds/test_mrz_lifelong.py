"""A lifelong card's MRZ expiry filler is kept as printed, not rejected as a bad date."""

from __future__ import annotations

import pytest
from idstation.agent.emrtd.keys import check_digit
from idstation.agent.emrtd.mrz import encode_td1, parse_mrz
from idstation.agent.errors import MrzError


@pytest.mark.parametrize("filler", ["000000", "999999", "<<<<<<", "991231"])
def test_a_lifelong_expiry_filler_parses_with_its_check_digit(filler: str) -> None:
    text = encode_td1(
        document_number="145960857", id_number="001145960857", date_of_birth="450415", sex="F",
        date_of_expiry=filler, name="NGUYEN<<NGOC<LINH",
    )  # fmt: skip
    assert parse_mrz(text).date_of_expiry == filler


def test_a_wrong_expiry_check_digit_is_still_refused() -> None:
    text = encode_td1(
        document_number="145960857", id_number="001145960857", date_of_birth="450415", sex="F",
        date_of_expiry="000000", name="NGUYEN<<NGOC<LINH",
    )  # fmt: skip
    lines = text.split("\n") if "\n" in text else [text[:30], text[30:60], text[60:90]]
    wrong = str((int(check_digit("000000")) + 1) % 10)
    lines[1] = lines[1][:14] + wrong + lines[1][15:]
    with pytest.raises(MrzError):
        parse_mrz("\n".join(lines))
