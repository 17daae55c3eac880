"""idstation.hal: hardware behind small ports (card reader, camera, indicators), real and simulated."""
