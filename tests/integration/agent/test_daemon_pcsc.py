"""`idstation run` with the real PC/SC stack (pcscd + vpcd + the virtual chip) and a replay camera."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.agent.sim import profiles
from idstation.agent.sim.provision import provision_for_tests
from idstation.mqtt.central.registry import Registry

from tests.integration.agent.test_daemon import Centre, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def write_photo(directory: Path, qr: str) -> None:
    from idstation.agent.sim.scene import SceneParams, render_scene
    from PIL import Image

    directory.mkdir()
    Image.fromarray(render_scene(qr, SceneParams(width=1280, height=960, ppm=5.0, tilt=10, seed=3))).save(
        directory / "card.png"
    )


def test_a_card_on_a_pcsc_reader_is_read_once_and_verified(
    virtual_card: Callable[..., object], broker_factory: Callable[..., object], tmp_path: Path
) -> None:
    pytest.importorskip("PIL")
    broker = broker_factory()
    an = profiles.builtin_profiles()["an"]
    write_photo(tmp_path / "camera", profiles.qr_text(an))
    key = X25519PrivateKey.generate()
    registry = Registry(tmp_path / "registry", create=True)
    state = tmp_path / "box"
    provision_for_tests(state, "hn-01", "c01", tmp_path / "ca", key.public_key(), broker.url, registry=registry)
    config = tmp_path / "idstation.toml"
    config.write_text(
        f'state_dir = "{state}"\ntrust_test_csca = true\ncsca_dir = "{tmp_path}"\n'
        '[reader]\nkind = "pcsc"\nname = "Virtual PCD 00 00"\npoll_s = 0.2\n'
        f'[camera]\nkind = "replay"\nreplay_dir = "{tmp_path / "camera"}"\nqr_budget_s = 3.0\n'
        "[status]\ninterval_s = 1.0\n",
        encoding="utf-8",
    )
    centre = Centre(broker.url, registry, key, tmp_path / "central.sqlite")
    with (tmp_path / "run.log").open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "idstation.agent.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        virtual_card(profiles.build_chip_image(an))
        assert centre.wait_for(1, 60) == 1
        time.sleep(2.0)  # the card stays on the reader: no second read
        assert len(centre.accepted) == 1
    finally:
        assert stop(proc) == 0
        centre.listener.stop()
    (event,) = centre.accepted.values()
    assert (event["status"], event["access"]) == ("verified", "PACE-CAN")
    assert an.id_number not in (tmp_path / "run.log").read_text(encoding="utf-8")
