"""Enrolment formats shared by the box (``idstation.provisioning``) and the centre
(``idstation.mqtt.central``), below both: the errors, the key-derived names (``ids``), the CSR and
its checks, the pairing code and its token hash, the bundle format and its signature check, the
online enrolment protocol (topics, documents) and the small MQTT session both sides use for it.
"""
