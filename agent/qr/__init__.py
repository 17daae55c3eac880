"""QR codes on citizen cards: decoding frames (zxing-cpp) and parsing the CCCD payload.

``decode.QrDecoder(config).decode(frame) -> QrHit | None``; ``cccd.parse_cccd(text) -> QrCitizen``;
``synth`` makes seeded synthetic card photos for tests.
"""
