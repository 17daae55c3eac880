"""The service is centre code: importing it (and building its app) loads no box module."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
import idstation.mqtt.central.service.server
from idstation.mqtt.central.service.app import build_app
from idstation.mqtt.central.service.clients import ClientsFile
build_app(None, None, X25519PrivateKey.generate(), ClientsFile("/nonexistent/clients.json"))
BOX = ("idstation.agent", "idstation.hal.camera", "idstation.hal.reader", "idstation.provisioning",
       "zxingcpp", "smartcard", "numpy")
print("\\n".join(m for m in sys.modules if m.startswith(BOX)))
"""


def test_importing_the_service_and_building_its_app_loads_no_box_module() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == []
