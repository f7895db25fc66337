"""OCPP-J gateway: charge station WebSockets bridged to Kafka (``ocpp_gw.core`` is the I/O-free heart)."""
