"""A series of virtual cards for the simulated reader and camera: the whole daemon without hardware.

``CardSeries`` plays a clerk: it places ``count`` virtual cards one after another on a
``SimReader`` (each a fresh ``VirtualChip``), shows the card's QR to the ``SimCamera`` while it
lies there, waits for the box's feedback (like a clerk waiting for the beep, bounded by
``max_hold_s``), keeps the card at least ``hold_s``, removes it and waits ``interval_s``.

Citizens come from a profiles directory (each subdirectory a profile) or the built-in test
citizens. ``scenario`` names a fault per card, cycled, so every failure path can be driven:

==============  =========================================================  ==================
scenario        what the card/camera does                                  expected event
==============  =========================================================  ==================
ok              good card, QR visible                                      identity verified
qr_hidden       QR side down (camera sees no QR)                           qr_not_visible
wrong_qr        the camera sees another citizen's QR                       access_denied
removed_early   the card leaves the field after a few commands             card_removed
dead_chip       the chip stops answering after access control              identity unverified
reader_fault    the reader fails to carry APDUs                            identity unverified
bad_hash        a data group altered after signing                         verification_failed
unknown_csca    signed by a CSCA the box does not trust                    identity unknown_csca
camera_dead     the camera fails while the card lies there                 camera_failed
==============  =========================================================  ==================
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from idstation.agent.config import Config
from idstation.agent.errors import ConfigError
from idstation.hal.errors import CameraError, TransmitError

log = structlog.get_logger(__name__)

SCENARIOS = (
    "ok", "qr_hidden", "wrong_qr", "removed_early", "dead_chip", "reader_fault", "bad_hash", "unknown_csca",
    "camera_dead",
)  # fmt: skip
EXPECTED = {
    "ok": "verified",
    "qr_hidden": "qr_not_visible",
    "wrong_qr": "access_denied",
    "removed_early": "card_removed",
    "dead_chip": "unverified",
    "reader_fault": "unverified",
    "bad_hash": "verification_failed",
    "unknown_csca": "unknown_csca",
    "camera_dead": "camera_failed",
}


@dataclass(frozen=True)
class SimCard:
    """One virtual card: its chip image, the QR the camera shows (None: QR hidden), its scenario."""

    label: str
    image: Any = field(repr=False)
    qr: str | None = field(repr=False)
    scenario: str = "ok"


class _FaultyReaderChip:
    """An APDU handler whose reader path breaks after access control (a reader fault)."""

    def __init__(self, chip: Callable[[bytes], bytes], after: int = 12) -> None:
        self._chip, self._after, self._count = chip, after, 0

    def reset(self) -> None:
        self._count = 0
        getattr(self._chip, "reset", lambda: None)()

    def __call__(self, apdu: bytes) -> bytes:
        self._count += 1
        if self._count > self._after:
            raise TransmitError("simulated reader fault")
        return self._chip(apdu)


class CardSeries:
    """Presents cards on a simulated reader from a thread; ``current_qr`` feeds the simulated camera."""

    def __init__(
        self,
        reader: Any,
        cards: list[SimCard] | Callable[[], list[SimCard]],
        count: int,
        *,
        interval_s: float = 2.0,
        hold_s: float = 1.5,
        start_delay_s: float = 0.5,
        max_hold_s: float = 30.0,
        progress_path: Path | None = None,
    ) -> None:
        self.reader, self.count = reader, count
        self._make_cards = cards if callable(cards) else (lambda: cards)
        self.cards: list[SimCard] = []
        self.interval_s, self.hold_s = interval_s, hold_s
        self.start_delay_s, self.max_hold_s = start_delay_s, max_hold_s
        self._current: SimCard | None = None
        self._outcome = threading.Event()
        self._stop = threading.Event()
        self.done = threading.Event()
        self.presented: list[str] = []  # scenario of each card presented, in order
        self._thread: threading.Thread | None = None
        self._progress_path = progress_path
        self._index = self._load_progress()

    # the camera's payload callable
    def current_qr(self) -> str | None:
        card = self._current
        if card is None:
            return None
        if card.scenario == "camera_dead":
            raise CameraError("simulated camera failure")
        return card.qr

    def outcome(self, _outcome: str = "") -> None:
        """The box signalled a result (the clerk heard the beep): this citizen is served."""
        if self._current is not None and not self._outcome.is_set():
            self._save_progress(self._index + 1)
        self._outcome.set()

    def _load_progress(self) -> int:
        """Cards already served by an earlier run of the daemon (the queue does not start over)."""
        if self._progress_path is None:
            return 0
        try:
            return int(json.loads(self._progress_path.read_text(encoding="utf-8"))["served"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def _save_progress(self, served: int) -> None:
        if self._progress_path is None:
            return
        tmp = self._progress_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"served": served}), encoding="utf-8")
        os.replace(tmp, self._progress_path)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="card-series", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        from idstation.agent.emrtd.virtual_card.chip import VirtualChip

        self.cards = self._make_cards()  # built here, after READY: start-up stays fast
        if not self.cards:
            log.error("sim_no_cards")
            self.done.set()
            return
        if self._stop.wait(self.start_delay_s):
            return
        while self._index < self.count:
            i = self._index
            card = self.cards[i % len(self.cards)]
            handler: Callable[[bytes], bytes] = VirtualChip(card.image)
            if card.scenario == "reader_fault":
                handler = _FaultyReaderChip(handler)
            self._outcome.clear()
            self._current = card
            self.presented.append(card.scenario)
            self.reader.insert(handler)
            log.info("sim_card_placed", n=i + 1, of=self.count, scenario=card.scenario)
            placed = time.monotonic()
            self._outcome.wait(self.max_hold_s)
            self._stop.wait(max(0.0, self.hold_s - (time.monotonic() - placed)))
            self.reader.remove()
            self._current = None
            self._index += 1
            if self._stop.is_set() or self._stop.wait(self.interval_s):
                break
        self.done.set()


# ---- building the cards ----------------------------------------------------------------------------
def _citizens(profiles_dir: Path | None) -> list[tuple[Any, Any]]:
    """(profile, test PKI) pairs from a directory (one subdirectory each) or the built-in citizens."""
    from idstation.agent.sim import profiles

    if profiles_dir is None:
        return [(p, None) for p in profiles.builtin_profiles().values()]
    if not profiles_dir.is_dir():
        raise ConfigError(f"simulation.profiles: {profiles_dir} is not a directory")
    found = [profiles.load_profile(p) for p in sorted(profiles_dir.iterdir()) if p.is_dir()]
    if not found:
        raise ConfigError(f"simulation.profiles: no profiles in {profiles_dir}")
    return found


PROGRESS_FILE = "simulation.json"  # cards served so far: a restarted daemon continues the queue


def _image(citizen: tuple[Any, Any], scenario: str) -> Any:
    from idstation.agent.emrtd.virtual_card.image import Faults
    from idstation.agent.sim import profiles
    from idstation.agent.sim.profile_data.pki import UNKNOWN_CSCA_SEED, default_pki

    profile, pki = citizen
    faults = None
    if scenario == "removed_early":
        faults = Faults(remove_after=12)
    elif scenario == "dead_chip":
        faults = Faults(dead_after_access=True)
    if scenario == "unknown_csca":
        pki = default_pki(UNKNOWN_CSCA_SEED)
    tamper = 13 if scenario == "bad_hash" else None
    return profiles.build_chip_image(profile, pki, faults, tamper_dg=tamper)


_PLAIN = frozenset({"ok", "qr_hidden", "wrong_qr", "camera_dead", "reader_fault"})  # the chip itself is good


def build_cards(profiles_dir: Path | None, scenario: list[str], count: int) -> list[SimCard]:
    """The cards of one series: citizens cycled, each with its scenario (default all "ok")."""
    from idstation.agent.sim import profiles

    unknown = [s for s in scenario if s not in SCENARIOS]
    if unknown:
        raise ConfigError(f"simulation.scenario: unknown {unknown}; known: {', '.join(SCENARIOS)}")
    citizens = _citizens(profiles_dir)
    plan = scenario or ["ok"]
    n = max(1, min(count, len(citizens) * len(plan)))
    cache: dict[tuple[int, str], Any] = {}
    cards = []
    for i in range(n):
        idx, scen = i % len(citizens), plan[i % len(plan)]
        key = (idx, "ok" if scen in _PLAIN else scen)
        if key not in cache:
            cache[key] = _image(citizens[idx], key[1])
        qr: str | None = profiles.qr_text(citizens[idx][0])
        if scen == "qr_hidden":
            qr = None
        elif scen == "wrong_qr":
            qr = profiles.qr_text(citizens[(idx + 1) % len(citizens)][0]) if len(citizens) > 1 else None
        cards.append(SimCard(f"card-{i + 1}", cache[key], qr, scen))
    return cards


def build_simulation(cfg: Config) -> tuple[CardSeries, Any, Any]:
    """The simulated reader, the simulated camera and the card series that drives them."""
    from idstation.hal.reader_sim import SimReader

    sim = cfg.simulation
    reader = SimReader("Simulated Reader 00")
    unknown = [s for s in sim.scenario if s not in SCENARIOS]
    if unknown:  # fail at start, not in the series thread
        raise ConfigError(f"simulation.scenario: unknown {unknown}; known: {', '.join(SCENARIOS)}")
    series = CardSeries(
        reader,
        lambda: build_cards(sim.profiles, list(sim.scenario), sim.count),
        sim.count,
        interval_s=sim.interval_s,
        hold_s=sim.hold_s,
        start_delay_s=sim.start_delay_s,
        progress_path=cfg.state_dir / PROGRESS_FILE if cfg.state_dir.is_dir() else None,
    )
    camera = None
    if cfg.camera.kind == "sim":
        from idstation.agent.sim.camera import SimCamera

        camera = SimCamera(series.current_qr, fps=10.0)
    elif cfg.camera.kind != "none":
        raise ConfigError("camera.kind: the simulated reader needs camera.kind = sim or none")
    return series, reader, camera
