"""Simulated charge station built on the ``ocpp`` package's ChargePoint, for demos and tests."""
