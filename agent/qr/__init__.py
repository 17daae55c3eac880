"""QR codes on citizen cards: decoding frames (zxing-cpp) and parsing the CCCD payload."""
