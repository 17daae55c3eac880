"""idstation.firmware_cfg: reader and camera profiles, Raspberry Pi OS settings (package data)."""
