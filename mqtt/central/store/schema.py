"""The versioned schema: each backend's numbered migration files (``migrations/<dialect>/NNNN_*.sql``),
read in order and split into statements (:meth:`~.engine.SqlStore.migrate` applies them).
"""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["migrations", "statements"]


def migrations(dialect: str) -> list[tuple[int, str]]:
    """The numbered SQL files of a backend, in order: ``[(1, sql), ...]``."""
    folder = resources.files("idstation.mqtt.central.store") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_[a-z0-9_]+\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """Split a migration into statements (comments dropped; no ``;`` inside our statements)."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]
