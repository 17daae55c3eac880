"""``python -m idstation.agent.cli``: the same as the ``idstation`` entry point."""

from __future__ import annotations

import sys

from idstation.agent.cli import main

sys.exit(main())
