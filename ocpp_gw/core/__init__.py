"""The I/O-free core: OCPP-J framing, the per-station call state machine and the Kafka envelope."""
