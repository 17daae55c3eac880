"""The project's own virtual CCCD chip: an APDU handler speaking ICAO 9303 (test peer and demo)."""
