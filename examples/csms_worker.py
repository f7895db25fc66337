"""A complete CSMS worker: accepts every station, answers its heartbeats, logs its connections."""

import sys

from ocpp_gw.sdk import Csms, InRecord, StationCall, utc_now

csms = Csms()


@csms.on("BootNotification", "ocpp2.0.1", "ocpp1.6")
def boot(call: StationCall) -> dict[str, object]:
    return {"status": "Accepted", "currentTime": utc_now(), "interval": 60}


@csms.on("Heartbeat")  # every version; a handler may also be a coroutine function
def heartbeat(call: StationCall) -> dict[str, object]:
    return {"currentTime": utc_now()}


@csms.on_connection
def connection(event: InRecord) -> None:
    csms.log.info("station %s", event.kind, extra={"station_id": event.station_id})


if __name__ == "__main__":  # python -m examples.csms_worker --config config.cfg
    sys.exit(csms.main())
