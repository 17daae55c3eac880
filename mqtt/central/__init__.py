"""The central side: receive, verify and open, record, confirm, serve.

Modules: ``listener`` (the processor and its MQTT driver), ``dedupe`` (replay and gap state),
``registry`` (enrolled and revoked devices), ``fleet_ca`` and ``enroller`` (the fleet CA and the
enrolment service), ``broker_config`` (broker configuration and ACLs). Importing this package
loads no box module (no QR, eMRTD or camera code).
"""
