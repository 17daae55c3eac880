"""idstation.mqtt: identity events on the wire (schema, seal), the durable outbox, the client, the central side."""
