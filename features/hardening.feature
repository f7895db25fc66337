@hardening
Feature: Hardening: what an attacker can make the gateway do is refused or bounded

  Each scenario's gateway lets a station send 1 frame/s with bursts of 3, accepts 20 authenticated
  handshakes/s, 20 unfinished handshakes per address, frames of up to 4096 bytes and 64 KiB of CSMS
  frames waiting for one station. Every scenario here was an attack that worked before. The deaf
  station's 950 frames stay under the old bound of 1,000 frames, but not under 64 KiB plus what the
  kernel's socket buffers hold (about 2 MB here).

  Scenario: CALLRESULTERRORs do not slip past the rate limit
    Given an ops station "CP_FLOOD" speaking "ocpp2.1"
    When "CP_FLOOD" sends 300 CALLRESULTERROR frames at once
    Then "CP_FLOOD" is closed with 1008 "message rate limit exceeded"
    And at most 3 of the frames of "CP_FLOOD" reached messages_in

  Scenario: Unsolicited CALLRESULTs buy neither log lines nor a free ride
    Given an ops station "CP_ANSWERS" speaking "ocpp2.0.1"
    When "CP_ANSWERS" sends 300 CALLRESULT frames nobody asked for
    Then "CP_ANSWERS" is closed with 1008 "message rate limit exceeded"
    And the ops gateway logged at most 12 lines about "CP_ANSWERS"

  Scenario: A flood of bad requests from one address does not starve stations elsewhere
    When 127.0.0.2 floods the gateway with requests for a bad path while 20 stations connect from 127.0.0.3
    Then all 20 stations from 127.0.0.3 were accepted

  Scenario: One address cannot hold more unfinished handshakes than its cap
    When 127.0.0.4 opens 60 TCP connections and sends nothing
    Then the gateway closes at least 40 of them at once
    And a station connecting from 127.0.0.5 is accepted

  Scenario: A station that does not read is closed before its queue outgrows send_queue_bytes
    Given a raw 2.1 station "CP_DEAF" that does not read
    When the CSMS sends "CP_DEAF" 950 SEND frames of 4000 bytes
    Then the ops gateway's metrics count 1 "send_queue_full" event

  Scenario: A CSMS CALL larger than max_message_size is refused to the CSMS, not forwarded
    Given an ops station "CP_SMALL" speaking "ocpp2.0.1"
    When the CSMS sends "CP_SMALL" a DataTransfer CALL of 10000 bytes
    Then the CSMS gets the gateway's CALLERROR "GenericError" for that call
    And "CP_SMALL" answers a Heartbeat the CSMS answers

  Scenario: A message id with CR LF reaches the correlation_id header escaped
    Given an ops station "CP_CRLF" speaking "ocpp2.0.1"
    When "CP_CRLF" sends a Heartbeat whose message id holds CR LF
    Then the messages_in record of that call has a correlation_id header without CR or LF

  Scenario: Station-chosen close codes do not make new metric series
    Given an ops station "CP_CODE" speaking "ocpp2.0.1"
    When "CP_CODE" closes its connection with code 4321
    Then the ops gateway's metrics count 1 connection closed with code "4xxx"

  Scenario: Two Authorization headers are a bad request, not a crash
    When a station sends a handshake with two Authorization headers
    Then that handshake is refused with HTTP 400
    And the ops gateway's metrics count 1 handshake refused for "bad_request"
