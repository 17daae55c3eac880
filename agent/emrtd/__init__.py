"""ICAO 9303 eMRTD: access control, secure messaging, LDS parsing, verification (pure code)."""
