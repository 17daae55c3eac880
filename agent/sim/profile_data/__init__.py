"""Embedded data for virtual citizen profiles (name lists, provinces) and the test PKI."""
