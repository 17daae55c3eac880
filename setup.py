"""Map the design card's top-level folders onto the ``idstation`` import namespace.

``agent/`` installs as ``idstation.agent``, ``hal/`` as ``idstation.hal`` and so on; a wheel
puts only ``idstation`` into site-packages. Metadata lives in pyproject.toml.
"""

from __future__ import annotations

from setuptools import find_packages, setup

FOLDERS = ("agent", "hal", "mqtt", "provisioning", "firmware_cfg")

package_dir: dict[str, str] = {}
packages: list[str] = []
for folder in FOLDERS:
    root = f"idstation.{folder}"
    package_dir[root] = folder
    packages.append(root)
    packages.extend(f"{root}.{sub}" for sub in find_packages(folder))

setup(package_dir=package_dir, packages=packages)
