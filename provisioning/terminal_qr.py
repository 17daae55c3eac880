"""The pairing code drawn as a QR code on the technician's terminal (``provision init``/``show``)."""

from __future__ import annotations

__all__ = ["render_terminal"]


def render_terminal(text: str) -> str:
    """The pairing code as a QR code drawn with block characters (for a terminal)."""
    import io

    import segno

    out = io.StringIO()
    segno.make(text, error="m", micro=False).terminal(out=out, compact=True, border=2)
    return out.getvalue()
