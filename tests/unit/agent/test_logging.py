"""Redaction: no name, ID number, MRZ, address or data-group bytes in a rendered log line."""

from __future__ import annotations

import io
import json

import structlog
from hypothesis import given
from hypothesis import strategies as st
from idstation.agent.logging import REDACTED, configure_logging, scrub_text

QR = "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Tân Định, Quận 1, Hồ Chí Minh|15042021"
SECRETS = ("001090123456", "012345678", "Nguyễn", "Văn An", "Tân Định", "01011990", "IDVNM")


def render(**fields: object) -> str:
    buf = io.StringIO()
    configure_logging("debug", stream=buf)
    structlog.get_logger("test").info("card_read", **fields)
    return buf.getvalue()


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_values_of_personal_keys_are_replaced() -> None:
    line = json.loads(render(citizen={"full_name": "Nguyễn Văn An"}, qr_text=QR, dg13=b"\x6d\x01", id_number="x"))
    assert line["citizen"] == line["qr_text"] == line["dg13"] == line["id_number"] == REDACTED


def test_free_text_is_scrubbed() -> None:
    text = render(note=f"bad card {QR} mrz IDVNM0930470641001093047064<<2", nested={"items": [QR]})
    assert_clean(text)


def test_bytes_are_rendered_as_their_length() -> None:
    assert json.loads(render(blob=b"\x01\x02\x03"))["blob"] == "<3 bytes>"


def test_exception_text_is_scrubbed() -> None:
    buf = io.StringIO()
    configure_logging("info", stream=buf)
    try:
        raise ValueError(f"cannot parse {QR}")
    except ValueError:
        structlog.get_logger("test").exception("read_crashed")
    assert_clean(buf.getvalue())
    assert "ValueError" in buf.getvalue()


def test_operational_values_survive() -> None:
    line = json.loads(render(reader="ACS ACR1252U 1S CL Reader", port=8883, reason="card_removed", depth=3))
    assert (line["reader"], line["port"], line["reason"], line["depth"]) == (
        "ACS ACR1252U 1S CL Reader",
        8883,
        "card_removed",
        3,
    )


@given(st.from_regex(r"\A\d{12}\Z"), st.from_regex(r"\A\d{9}\Z"))
def test_any_id_number_in_free_text_is_masked(id12: str, id9: str) -> None:
    out = scrub_text(f"id {id12} old {id9}.")
    assert id12 not in out
    assert id9 not in out


def test_core_module_records_are_redacted_json_lines_like_structlog_ones() -> None:
    """The pure cores log through the standard library: the daemon still writes JSON with personal data masked."""
    import io
    import json

    from idstation.agent.logging import configure_logging
    from idstation.hal.logs import get_logger

    out = io.StringIO()
    configure_logging("info", out)
    get_logger("idstation.agent.emrtd.test").info("chip_opened", access="PACE-CAN", full_name="Nguyễn Văn A")
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["event"] == "chip_opened"
    assert line["access"] == "PACE-CAN"
    assert line["level"] == "info"
    assert "Nguyễn" not in out.getvalue()
