"""The device state directory and its identity generations.

Theory of operation: ``STATE/identity`` is a symbolic link to one generation directory
``STATE/identity.d/gNNNN``. A change (init, apply, renew) never edits the live generation: it
builds the next one in ``gNNNN.tmp`` (keys are hard-linked from the live generation, new files
written and fsynced), renames it to ``gNNNN``, fsyncs ``identity.d``, then swaps the link with
``rename(2)`` of a fresh link over ``identity`` and fsyncs ``STATE``. The rename is the commit
point: a power cut (or a killed process) at any step leaves ``identity`` naming the old or the new
generation, both complete. Leftover ``*.tmp`` generations are removed by the next change.

Readers open files through ``STATE/identity/...`` (the layout in docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from idstation.provisioning.errors import StateError
from idstation.provisioning.files import fsync_dir, make_private_dir, service_owner, write_new

log = structlog.get_logger(__name__)

IDENTITY = "identity"
GENERATIONS = "identity.d"
SECRET_FILES = frozenset({"signing_key.pem", "tls_key.pem", "pairing.json"})
_GEN_RE = re.compile(r"^g(\d{4,})$")
KEEP_GENERATIONS = 2  # the live one and the one before it

StepHook = Callable[[str], None]


def _env_step_hook() -> StepHook:
    """Fault-injection seam for tests that kill ``idstation provision apply`` between steps.

    ``IDSTATION_TEST_STEP_DELAY=<seconds>`` makes each step log ``identity_step`` and pause, so a test
    can SIGKILL the process at a known point. Unset (always, in production): no effect.
    """
    raw = os.environ.get("IDSTATION_TEST_STEP_DELAY")
    if not raw:
        return lambda _step: None
    try:
        delay = min(max(float(raw), 0.0), 10.0)
    except ValueError:
        return lambda _step: None

    def pause(step: str) -> None:
        log.warning("identity_step", step=step, delay_s=delay)
        time.sleep(delay)

    return pause


class Generation:
    """A generation being built: write files into it, then ``StateDir.commit`` it."""

    def __init__(self, path: Path, number: int, owner: tuple[int, int] | None) -> None:
        self.path = path
        self.number = number
        self._owner = owner

    def write(self, name: str, data: bytes) -> Path:
        """Write one file (secrets 0600, others 0640), fsynced."""
        mode = 0o600 if name in SECRET_FILES else 0o640
        target = self.path / name
        write_new(target, data, mode=mode, owner=self._owner)
        return target

    def carry(self, source_dir: Path | None, names: list[str]) -> None:
        """Bring files over unchanged from the live generation (hard link; copy across filesystems)."""
        if source_dir is None:
            return
        for name in names:
            src = source_dir / name
            if not src.exists():
                continue
            try:
                os.link(src, self.path / name)
            except OSError:
                shutil.copy2(src, self.path / name)


class StateDir:
    """``STATE`` with its generation-switched ``identity`` directory."""

    def __init__(self, root: Path | str, *, on_step: StepHook | None = None) -> None:
        self.root = Path(root)
        self._on_step = on_step or _env_step_hook()

    @property
    def identity(self) -> Path:
        return self.root / IDENTITY

    @property
    def generations(self) -> Path:
        return self.root / GENERATIONS

    def current(self) -> Path | None:
        """The live generation directory, or None before ``provision init``."""
        link = self.identity
        if link.is_symlink():
            target = link.resolve()
            return target if target.is_dir() else None
        if link.is_dir():
            return link  # a hand-made identity directory (tests, old layout): readable, not switchable
        return None

    def begin(self) -> Generation:
        """Start building the next generation (removes leftovers of interrupted changes)."""
        owner = service_owner()
        make_private_dir(self.root, mode=0o750, owner=owner)
        make_private_dir(self.generations, mode=0o750, owner=owner)
        if self.identity.exists() and not self.identity.is_symlink():
            raise StateError(f"{self.identity} is a plain directory; move it away to let provisioning manage it")
        self._remove_leftovers()
        number = max(self._numbers(), default=0) + 1
        path = self.generations / f"g{number:04d}.tmp"
        path.mkdir(mode=0o750)
        if owner is not None:
            os.chown(path, *owner)
        self._on_step("generation_started")
        return Generation(path, number, owner)

    def commit(self, gen: Generation) -> Path:
        """Make ``gen`` the live generation atomically; returns its final path."""
        fsync_dir(gen.path)
        final = self.generations / f"g{gen.number:04d}"
        self._on_step("files_written")
        os.rename(gen.path, final)
        fsync_dir(self.generations)
        self._on_step("generation_renamed")
        new_link = self.root / f".{IDENTITY}.link-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            new_link.unlink()
        os.symlink(os.path.join(GENERATIONS, final.name), new_link)
        self._on_step("link_created")
        os.replace(new_link, self.identity)
        fsync_dir(self.root)
        self._on_step("switched")
        log.info("identity_generation_switched", generation=final.name)
        self._prune(keep=final)
        return final

    def abort(self, gen: Generation) -> None:
        """Throw away a generation that will not be committed."""
        shutil.rmtree(gen.path, ignore_errors=True)

    def previous(self) -> Path | None:
        """The generation before the live one (kept for rollback), if any."""
        live = self.current()
        older = [n for n in self._numbers() if live is None or f"g{n:04d}" != live.name]
        live_n = int(live.name[1:]) if live is not None and _GEN_RE.match(live.name) else None
        older = [n for n in older if live_n is None or n < live_n]
        return self.generations / f"g{max(older):04d}" if older else None

    def _numbers(self) -> list[int]:
        if not self.generations.is_dir():
            return []
        numbers = []
        for entry in self.generations.iterdir():
            match = _GEN_RE.match(entry.name.removesuffix(".tmp"))
            if match:
                numbers.append(int(match.group(1)))
        return numbers

    def _remove_leftovers(self) -> None:
        for entry in self.generations.iterdir():
            if entry.name.endswith(".tmp"):
                shutil.rmtree(entry, ignore_errors=True)
                log.warning("identity_leftover_removed", generation=entry.name)
        for entry in self.root.glob(f".{IDENTITY}.link-*"):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()

    def _prune(self, keep: Path) -> None:
        live_n = int(keep.name[1:])
        for n in sorted(self._numbers()):
            if n <= live_n - KEEP_GENERATIONS:
                shutil.rmtree(self.generations / f"g{n:04d}", ignore_errors=True)
