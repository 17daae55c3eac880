"""structlog configuration: JSON lines to stderr (journald picks them up), personal data redacted.

The ``redact`` processor runs last before rendering, on every event of every module. Structure
first, patterns second:

1. values of keys that hold personal data (``citizen``, ``name``, ``full_name``, ``id_number``,
   ``address``, ``dob``, ``mrz``, ``dg13``, ``qr_text`` ...) are replaced whole, at any nesting
   depth, whatever their type;
2. in every other string (the event text, exception text, tracebacks) patterns mask what free
   text can carry: standalone 6-12 digit runs (ID numbers, CAN, ddmmyyyy), TD1 MRZ lines, dates
   (dd/mm/yyyy and ISO 1990-03-15, not timestamps), Vietnamese personal names (with or without
   diacritics, in capitals too) and street addresses (house numbers, Phường/Phuong, Quận/Quan ...);
3. identifiers stay intact: a digit run inside a word (``ids-6a936e1c7f2012345678``, an event id,
   a key id, a hex digest) is not a personal number, so logs still match the centre's events;
4. bytes are never rendered (data-group bytes): only their length.
"""

from __future__ import annotations

import datetime as dt
import json
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
        "citizen", "name", "full_name", "fullname", "given_names", "given_name", "surname", "family_name",
        "id_number", "idnumber", "old_id", "old_id_number", "document_number", "doc_number", "cccd", "can",
        "address", "permanent_address", "residence", "permanent_residence", "hometown", "place_of_origin",
        "place_of_birth", "dob", "date_of_birth", "birth_date", "birthday", "date_of_expiry", "expiry_date",
        "issue_date", "gender", "sex", "ethnicity", "religion", "mrz", "mrz_key", "mrz_text", "mrz_lines", "qr",
        "qr_text", "qr_payload", "payload", "text", "parents", "father", "mother", "father_name", "mother_name",
        "spouse", "spouse_name", "identifying_marks", "face", "photo", "portrait", "sod", "ef_sod", "dg", "dgs",
        "data_groups", "password", "keys", "candidates", "ks_enc", "ks_mac",
    }
)  # fmt: skip
_DG_KEY = re.compile(r"^(raw_)?dg\d{1,2}(_.*)?$")

_PATTERNS = (
    # TD1 MRZ lines (30 chars of A-Z0-9<) and anything MRZ-looking with filler runs
    re.compile(r"[A-Z0-9<]{8,}<<[A-Z0-9<]*"),
    re.compile(r"\bIDVNM[A-Z0-9<]*"),
    # 12-digit citizen ID, 9-digit old ID, 6-digit CAN, ddmmyyyy: standalone runs of 6-12 digits only;
    # a run inside an identifier (letters, digits, '-' or '_' around it) is part of that identifier
    re.compile(r"(?<![\w-])\d{6,12}(?![\w-])"),
    # dates dd/mm/yyyy, dd-mm-yyyy, dd.mm.yyyy
    re.compile(r"(?<![\w-])\d{1,2}[/.-]\d{1,2}[/.-]\d{4}(?![\w-])"),
    # ISO dates 1990-03-15 (a date of birth), not timestamps (2026-12-03T09:30:00Z: when something happened)
    re.compile(r"(?<![\w-])\d{4}-\d{1,2}-\d{1,2}(?![\w:-]|T\d)"),
)
_UPPER = "A-ZÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬĐÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴ"
_LOWER = "a-zàáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"
_WORD = rf"[{_UPPER}][{_LOWER}]+"
# A name word: Title case or ALL CAPS, with or without diacritics.
_NAME_WORD = rf"(?:[{_UPPER}][{_LOWER}]*|[{_UPPER}]+)(?![\w-])"
# Vietnamese family names and the commonest middle names, without diacritics (compared folded).
_FAMILY = frozenset(
    (
        "nguyen", "tran", "le", "pham", "hoang", "huynh", "phan", "vu", "vo", "dang", "bui", "do", "ho", "ngo", "duong",
        "ly", "dinh", "trinh", "mai", "dao", "cao", "luu", "to", "truong", "lam", "kieu", "chau", "ta", "quach", "thai",
        "tang", "ton", "ha", "lai", "luong", "ong", "diep", "doan", "khuc", "la", "mac", "nghiem", "vuong",
    )
)  # fmt: skip
_MIDDLE = frozenset(
    (
        "van", "thi", "duc", "huu", "minh", "ngoc", "thanh", "quoc", "cong", "xuan", "kim", "gia", "bao", "dinh", "thu",
        "hong", "quang", "tien",
    )
)  # fmt: skip
_NAME_RUN = re.compile(rf"(?<![\w-]){_NAME_WORD}(?:\s+{_NAME_WORD}){{1,5}}")
# Street addresses: an administrative or street word followed by its name or number.
_PLACE_WORDS = (
    "Phường|Phuong|Quận|Quan|Huyện|Huyen|Xã|Xa|Thị trấn|Thi tran|Thị xã|Thi xa|Tỉnh|Tinh|Thành phố|Thanh pho|"
    "TP|Đường|Duong|Phố|Pho|Số|So|Ấp|Ap|Thôn|Thon|Khu phố|Khu pho|Tổ|Ngõ|Ngo|Ngách|Ngach|Hẻm|Hem|Kiệt|Kiet|"
    "Bản|Làng|Lang|Xóm|Xom|Khóm|Khom"
)
_ADDRESS = re.compile(
    rf"(?<![\w-])(?:{_PLACE_WORDS}|{_PLACE_WORDS.upper()})\.?\s+(?:\d+[A-Za-z]?(?:/\d+)*|{_NAME_WORD})"
    rf"(?:\s+(?:\d+|{_NAME_WORD}))*"
)
# A house number ("12", "12A", "12/3") in front of a street name already masked.
_HOUSE = re.compile(rf"(?<![\w/-])\d{{1,5}}[A-Za-z]?(?:/\d{{1,5}})*(?=\s+{re.escape(REDACTED)})")
_VN_CHARS = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐ]")
_VN_PHRASE = re.compile(rf"{_WORD}(?:[ ,]+{_WORD}){{1,6}}")


def _normal_key(key: object) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")


def is_sensitive_key(key: object) -> bool:
    norm = _normal_key(key)
    return norm in SENSITIVE_KEYS or bool(_DG_KEY.match(norm))


def scrub_text(text: str) -> str:
    """Mask ID numbers, MRZ lines, dates, Vietnamese names and street addresses in free text."""
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _ADDRESS.sub(REDACTED, text)
    text = _NAME_RUN.sub(_mask_name, text)
    text = _HOUSE.sub(REDACTED, text)
    # capitalised phrases carrying Vietnamese diacritics: names and addresses ("Phường Tân Định")
    return _VN_PHRASE.sub(lambda m: REDACTED if _VN_CHARS.search(m.group(0)) else m.group(0), text)


def _mask_name(match: re.Match[str]) -> str:
    """A run of capitalised words is a name when one word is a Vietnamese family or middle name."""
    words = [_fold(w) for w in match.group(0).split()]
    if any(w in _FAMILY for w in words[:1]) or any(w in _MIDDLE for w in words[1:-1]):
        return REDACTED
    return match.group(0)


def _fold(word: str) -> str:
    """Lower case without diacritics (đ → d), to compare names written either way."""
    import unicodedata

    plain = unicodedata.normalize("NFD", word.lower().replace("đ", "d"))
    return "".join(c for c in plain if not unicodedata.combining(c))


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


class _JsonFormatter(logging.Formatter):
    """Stdlib records as the same redacted JSON lines as structlog's.

    Records from ``hal.logs`` carry their event name and fields in ``record.fields``; any other
    record (paho, pika, uvicorn) becomes ``{"event": <scrubbed message>}``.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        line: dict[str, Any] = dict(fields) if isinstance(fields, dict) else {}
        line.setdefault("event", record.getMessage())
        line["level"] = record.levelname.lower()
        line["logger"] = record.name
        line["timestamp"] = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat()
        if record.exc_info:
            line["exception"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(redact(None, "", line), ensure_ascii=False, default=str)


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
    handler.setFormatter(_JsonFormatter())
    handler.addFilter(_StdlibRedactor())
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.INFO) if numeric < logging.INFO else numeric)
