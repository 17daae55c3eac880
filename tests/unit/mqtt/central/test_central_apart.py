"""The central side installs and runs without the box: importing it loads no box module.

The one part of idstation.agent it may load is the pure eMRTD verification core (the centre
re-verifies the chip, issue 13): never the wiring, the simulator, the QR core, the card emulator,
readers, cameras, numpy or zxing."""

from __future__ import annotations

import json
import subprocess
import sys

BOX_PACKAGES = {"numpy", "zxingcpp", "cv2", "picamera2", "smartcard", "segno", "PIL", "gpiozero"}
BOX_PREFIXES = ("idstation.agent", "idstation.hal.camera", "idstation.hal.reader", "idstation.hal.indicator")
PURE_CORE = ("idstation.agent", "idstation.agent.errors", "idstation.agent.emrtd")  # and idstation.agent.emrtd.*
NOT_PURE = ("idstation.agent.emrtd.virtual_card", "idstation.agent.emrtd.session")


def _box_module(name: str) -> bool:
    if name.split(".", maxsplit=1)[0] in BOX_PACKAGES:
        return True
    core = name in PURE_CORE or name.startswith("idstation.agent.emrtd.")
    return name.startswith(BOX_PREFIXES) and (not core or name.startswith(NOT_PURE))


_PROBE = r"""
import importlib, json, pkgutil, sys
import idstation.mqtt.central as central
names = [m.name for m in pkgutil.walk_packages(central.__path__, central.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""


def test_importing_every_central_module_loads_no_box_module() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(done.stdout)
    assert len(report["imported"]) > 10  # the probe really walked the package
    assert "idstation.mqtt.central.chip_check" in report["imported"]  # the chip check's core was loaded too
    box = [m for m in report["loaded"] if _box_module(m)]
    assert box == []


def test_the_rule_refuses_box_modules_and_allows_only_the_pure_emrtd_core() -> None:
    refused = ["idstation.agent.wiring", "idstation.agent.sim.profiles", "idstation.agent.qr.decode", "numpy",
               "zxingcpp", "idstation.hal.camera_source", "idstation.hal.reader_pcsc",
               "idstation.agent.emrtd.virtual_card.chip", "idstation.agent.emrtd.session"]  # fmt: skip
    allowed = ["idstation.agent.emrtd.recheck", "idstation.agent.emrtd.passive_auth", "idstation.agent.errors"]
    assert [m for m in refused if not _box_module(m)] == []
    assert [m for m in allowed if _box_module(m)] == []
