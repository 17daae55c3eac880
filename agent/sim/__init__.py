"""The simulator and test bench: citizen profiles and their test PKI, simulated card series, the demo,
synthetic card photos and the scene renderer, a loopback test broker and a throw-away TLS PKI, and the
in-process enrolment of a simulated box.

Product code never imports it, except the daemon's wiring (``reader.kind = sim``), the demo and the
command line (an import-linter contract keeps it so). The virtual chip and the LDS encoders are not
here: the card emulator is a product feature (``card serve``) and lives beside the eMRTD core.
"""
