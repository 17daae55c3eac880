"""idstation.agent: the daemon, its pipeline (QR, chip, verification), and the command line."""
