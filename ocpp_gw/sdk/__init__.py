"""The CSMS SDK: what a CSMS written on this gateway needs, with the Kafka details kept inside.

- :class:`Csms`, a worker of the CSMS consumer group on ``messages_in``: answers station CALLs with
  handlers registered per action and OCPP version, hands connection events to its callbacks, commits
  a record only after Kafka acknowledged the answers up to it, and replaces a consumer that stops
  making progress.
- :class:`CsmsClient`: starts calls to stations through the route table (:meth:`CsmsClient.send_call`)
  and follows what arrives on ``messages_in`` from the moment it starts (answers, connection events).

Records are read with :func:`ocpp_gw.core.envelope.decode_in_record` and answers written with
:func:`~ocpp_gw.core.envelope.out_record`. The README's "Write your own CSMS" has an example.
"""

from ..clock import utc_now
from ..core.envelope import InRecord
from ..core.protocol import OcppVersion
from ..routes import StationOffline
from .calls import CallErrorReceived, CallTimeout, Response, StationCall, to_payload
from .client import CsmsClient
from .worker import Csms

__all__ = [
    "CallErrorReceived",
    "CallTimeout",
    "Csms",
    "CsmsClient",
    "InRecord",
    "OcppVersion",
    "Response",
    "StationCall",
    "StationOffline",
    "to_payload",
    "utc_now",
]
