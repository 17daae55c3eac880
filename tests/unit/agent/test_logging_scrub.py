"""The scrubber: personal data masked by key first, by pattern second; identifiers left intact."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from idstation.agent.logging import REDACTED, configure_logging, scrub_text
from idstation.mqtt.clock import uuid7


def render(event: str = "card_read", **fields: object) -> dict[str, object]:
    buf = io.StringIO()
    configure_logging("debug", stream=buf)
    structlog.get_logger("test").info(event, **fields)
    return json.loads(buf.getvalue().splitlines()[-1])


@pytest.mark.parametrize("key", ["name", "full_name", "address", "dob", "date_of_birth", "id_number", "mrz", "gender"])
def test_values_of_personal_keys_are_replaced_whatever_they_hold(key: str) -> None:
    line = render(**{key: "plain looking value 42"})
    assert line[key] == REDACTED


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("born 1990-03-15", "1990-03-15"),
        ("born 15/03/1990", "15/03/1990"),
        ("holder NGUYEN VAN AN", "NGUYEN VAN AN"),
        ("holder NGUYỄN VĂN AN", "NGUYỄN VĂN AN"),
        ("holder Nguyen Van An", "Nguyen Van An"),
        ("holder Kieu Thi Mai", "Kieu Thi Mai"),
        ("lives at 12 Nguyen Trai, Phuong Ben Thanh, Quan 1", "Ben Thanh"),
        ("lives at 12 Nguyen Trai, Phuong Ben Thanh, Quan 1", "12 "),
        ("lives at So 5 Duong Le Loi", "Le Loi"),
        ("lives at Phường Tân Định, Quận 1", "Tân Định"),
        ("id 001090123456 old 012345678", "001090123456"),
    ],
)
def test_free_text_patterns_are_masked(text: str, secret: str) -> None:
    line = render(note=text)
    assert secret not in json.dumps(line, ensure_ascii=False)


def test_event_and_device_identifiers_stay_intact_so_logs_match_the_centre() -> None:
    event_id = uuid7()
    device_id = "ids-6a936e1c7f2012345678"[:20]
    line = render(note=f"published {event_id} from {device_id}", event_id=event_id, device_id=device_id)
    assert line["event_id"] == event_id
    assert line["device_id"] == device_id
    assert line["note"] == f"published {event_id} from {device_id}"


def test_timestamps_and_operational_text_survive() -> None:
    text = "sent at 2026-12-03T09:30:00Z to ACS ACR1252U 1S CL Reader: SW 6A82 during READ BINARY, 65542 bytes"
    assert scrub_text(text) == text


@given(st.text(alphabet="0123456789abcdef", min_size=16, max_size=32))
def test_hex_identifiers_are_never_cut(hex_digits: str) -> None:
    for ident in (f"ids-{hex_digits}", f"key-{hex_digits}", f"x{hex_digits}"):
        assert scrub_text(f"device {ident} ok") == f"device {ident} ok"


FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương", "Kiều", "Lương"]
MIDDLE = ["Văn", "Thị", "Đức", "Hữu", "Minh", "Ngọc", "Thanh", "Quốc", "Xuân"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Lan", "Mai", "Nam", "Phúc", "Quân", "Tâm", "Yến"]


def _plain(text: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in folded if not unicodedata.combining(c))


@given(
    st.sampled_from(FAMILY), st.sampled_from(MIDDLE), st.sampled_from(GIVEN),
    st.sampled_from(["as is", "plain", "upper", "plain upper"]),
    st.sampled_from(["holder {} tapped", "{}", "name={} ok", "read failed for {}: removed"]),
)  # fmt: skip
def test_vietnamese_names_in_any_spelling_are_masked(
    family: str, middle: str, given_name: str, how: str, where: str
) -> None:
    name = f"{family} {middle} {given_name}"
    if "plain" in how:
        name = _plain(name)
    if "upper" in how:
        name = name.upper()
    scrubbed = scrub_text(where.format(name))
    assert family not in scrubbed and _plain(family) not in scrubbed and _plain(family).upper() not in scrubbed


DATE_FORMS = ["{:%Y-%m-%d}", "{:%d/%m/%Y}", "{:%d%m%Y}", "{:%d-%m-%Y}"]


@given(st.dates(date(1900, 1, 1), date(2100, 12, 31)), st.sampled_from(DATE_FORMS))
def test_dates_of_birth_in_any_written_form_are_masked(day: object, form: str) -> None:
    text = form.format(day)
    assert text not in scrub_text(f"born {text}, card ok")
