"""structlog configuration: JSON lines to stderr (journald picks them up), personal data redacted.

The ``redact`` processor runs last before rendering, on every event of every module:

- values of keys that hold personal data (``citizen``, ``full_name``, ``id_number``, ``address``,
  ``mrz``, ``dg13``, ``qr_text`` ...) are replaced whole, at any nesting depth;
- in every other string (the event text, exception text, tracebacks), 12-digit and 9-digit
  numbers, TD1 MRZ lines, dates of birth and Vietnamese personal names are masked;
- bytes are never rendered (data-group bytes): only their length.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

REDACTED = "[redacted]"

# Keys (normalised to lower snake case) whose values are personal data, whatever their type.
SENSITIVE_KEYS = frozenset(
    {
        "citizen", "full_name", "fullname", "given_names", "surname", "id_number", "idnumber",
        "old_id", "old_id_number", "document_number", "doc_number", "cccd", "can", "address", "permanent_address",
        "residence", "permanent_residence", "hometown", "place_of_origin", "dob", "date_of_birth", "birth_date",
        "date_of_expiry", "mrz", "mrz_key", "mrz_text", "qr", "qr_text", "qr_payload", "payload", "text",
        "parents", "father", "mother", "spouse", "identifying_marks", "face", "photo", "portrait", "sod", "ef_sod",
        "dg", "dgs", "data_groups", "password", "keys", "candidates", "ks_enc", "ks_mac",
    }
)  # fmt: skip
_DG_KEY = re.compile(r"^(raw_)?dg\d{1,2}(_.*)?$")

_PATTERNS = (
    # TD1 MRZ lines (30 chars of A-Z0-9<) and anything MRZ-looking with filler runs
    re.compile(r"[A-Z0-9<]{8,}<<[A-Z0-9<]*"),
    re.compile(r"\bIDVNM[A-Z0-9<]*"),
    # 12-digit citizen ID, 9-digit old ID, 6-digit CAN, in any digit run of 6+ digits
    re.compile(r"(?<!\d)\d{6,12}(?!\d)"),
    # dates dd/mm/yyyy, ddmmyyyy-ish already caught; yyyy-mm-dd and dd/mm/yyyy
    re.compile(r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{4}\b"),
)
# Vietnamese personal names: two or more capitalised words, at least one with a Vietnamese
# diacritic or a common family name (Nguyễn, Trần, Lê, Phạm ...). Catches names in free text.
_FAMILY = (
    "Nguyễn|Nguyen|Trần|Tran|Lê|Le|Phạm|Pham|Hoàng|Hoang|Huỳnh|Huynh|Phan|Vũ|Vu|Võ|Vo|Đặng|Dang|Bùi|Bui|"
    "Đỗ|Do|Hồ|Ho|Ngô|Ngo|Dương|Duong|Lý|Ly|Đinh|Dinh|Trịnh|Trinh|Mai|Đào|Dao|Cao|Lưu|Luu|Tô|To"
)
_UPPER = "A-ZÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬĐÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴ"
_LOWER = "a-zàáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"
_WORD = rf"[{_UPPER}][{_LOWER}]+"
_NAME_WORD = rf"[{_UPPER}][{_LOWER}]*"
_NAME = re.compile(rf"\b(?:{_FAMILY})(?:\s+{_NAME_WORD}){{1,4}}\b")
_VN_CHARS = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐ]")
_VN_PHRASE = re.compile(rf"{_WORD}(?:[ ,]+{_WORD}){{1,6}}")


def _normal_key(key: object) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")


def is_sensitive_key(key: object) -> bool:
    norm = _normal_key(key)
    return norm in SENSITIVE_KEYS or bool(_DG_KEY.match(norm))


def scrub_text(text: str) -> str:
    """Mask ID numbers, MRZ lines, dates and Vietnamese names in free text."""
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _NAME.sub(REDACTED, text)
    # capitalised phrases carrying Vietnamese diacritics: names and addresses ("Phường Tân Định")
    return _VN_PHRASE.sub(lambda m: REDACTED if _VN_CHARS.search(m.group(0)) else m.group(0), text)


def scrub(value: Any, depth: int = 0) -> Any:
    """Redact a value of a non-sensitive key: walk containers, scrub strings, hide bytes."""
    if value is None or isinstance(value, bool | int | float):
        result: Any = value
    elif depth > 8:
        result = REDACTED
    elif isinstance(value, str):
        result = scrub_text(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        result = f"<{len(value)} bytes>"
    elif isinstance(value, Mapping):
        result = {k: (REDACTED if is_sensitive_key(k) else scrub(v, depth + 1)) for k, v in value.items()}
    elif isinstance(value, list | tuple | set | frozenset):
        result = [scrub(v, depth + 1) for v in value]
    else:  # anything else renders through repr/str: scrub that text
        result = scrub_text(str(value))
    return result


def redact(_logger: object, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the last stage before rendering."""
    out: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key in {"timestamp", "level", "logger"}:
            out[key] = value
        elif is_sensitive_key(key):
            out[key] = REDACTED
        else:
            out[key] = scrub(value)
    return out


class _StdlibRedactor(logging.Filter):
    """Scrub stdlib log records (paho, amqtt) the same way."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = scrub_text(record.getMessage())
        except (TypeError, ValueError):
            record.msg = "unformattable log record"
        record.args = None
        return True


class _Stderr:
    """Whatever ``sys.stderr`` is at write time (test runners and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str | None = None, stream=None) -> None:  # type: ignore[no-untyped-def]
    """Route structlog and stdlib logging to ``stream`` (stderr) as redacted JSON lines."""
    name = (level or os.environ.get("IDSTATION_LOG_LEVEL") or "info").upper()
    numeric = getattr(logging, name, logging.INFO)
    out = stream or _Stderr()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_idstation", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(out)
    handler._idstation = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(_StdlibRedactor())
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.INFO) if numeric < logging.INFO else numeric)
