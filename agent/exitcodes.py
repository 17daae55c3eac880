"""The process exit codes of every ``idstation`` command (README.md "Exit codes").

The numbers only; which error gives which code is the one table in ``agent/cli/exitcodes.py``.
The daemon and the demo return these too.
"""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1  # ran, but a check failed (verification failed, an image did not decode, selftest failed)
    USAGE = 2  # bad input: arguments, QR/MRZ text, files (argparse also exits 2)
    NO_CARD = 3  # no card (or no reader holding one) within the time allowed
    ACCESS_DENIED = 4  # no access key opened the chip
    CARD_REMOVED = 5  # the card left the reader mid-read
    CARD_ERROR = 6  # the chip answered something we cannot read (hostile/broken chip, SM failure)
    DEVICE_ERROR = 7  # reader/camera/PC-SC service unavailable
    CONFIG_ERROR = 8  # configuration invalid or device not provisioned
    BROKER_ERROR = 9  # broker unreachable / TLS failure
    INTERNAL = 70  # a bug: reported without personal data
