"""LDS data groups (ICAO 9303-10): parsers and, for virtual cards, encoders."""
