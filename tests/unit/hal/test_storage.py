"""Durable writes: whole files only, the mode from the first byte, no temporary left behind."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from idstation.hal.storage import write_atomic, write_new


def test_concurrent_writers_of_one_file_each_leave_a_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    bodies = [json.dumps({"writer": i, "pad": "x" * (10_000 + i)}).encode() for i in range(8)]
    errors: list[BaseException] = []

    def write(body: bytes) -> None:
        try:
            for _ in range(20):
                write_atomic(target, body)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert target.read_bytes() in bodies
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_secret_has_its_mode_from_the_start_and_keeps_it_on_replace(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    old = os.umask(0)
    try:
        write_atomic(key, b"one", mode=0o600)
        write_atomic(key, b"two", mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes() == b"two"


def test_write_new_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "once"
    write_new(path, b"first")
    with pytest.raises(FileExistsError):
        write_new(path, b"second")
    assert path.read_bytes() == b"first"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_atomic(target, None)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
