"""A virtual chip image never prints what it holds."""

from __future__ import annotations


def test_a_chip_image_repr_shows_no_file_contents() -> None:
    from idstation.agent.emrtd.virtual_card.image import ChipImage

    image = ChipImage(
        files={0x0101: "Nguyễn Văn An 001090123456".encode()},
        can="123456",
        doc_number="090123456",
        date_of_birth="900101",
        date_of_expiry="300101",
    )
    text = repr(image)
    assert "0101:" in text
    for secret in ("Nguy", "001090123456", "123456", "090123456", "900101"):
        assert secret not in text
