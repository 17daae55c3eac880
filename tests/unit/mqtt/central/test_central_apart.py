"""The central side installs and runs without the box: importing it loads no box module."""

from __future__ import annotations

import json
import subprocess
import sys

BOX_PACKAGES = {"numpy", "zxingcpp", "cv2", "picamera2", "smartcard", "segno", "PIL", "gpiozero"}
BOX_PREFIXES = ("idstation.agent", "idstation.hal.camera", "idstation.hal.reader", "idstation.hal.indicator")

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
    box = [m for m in report["loaded"] if m.split(".")[0] in BOX_PACKAGES or m.startswith(BOX_PREFIXES)]
    assert box == []
