Feature: Operations: health, readiness, metrics, limits and a paced drain

  Each scenario starts its own gateway on topics that no CSMS reads; the scenario answers as the CSMS.
  It allows 3 connections, 4 KiB frames, 1 frame per second per station (bursts of 3) and drains 2 stations a second.

  @ops
  Scenario: Health comes first, readiness once the gateway owns partitions, metrics count the traffic
    Then the ops gateway's /healthz answers 200 and /readyz answers 200
    Given an ops station "CP_OPS1" speaking "ocpp2.0.1"
    When "CP_OPS1" sends a Heartbeat that the CSMS answers
    Then the ops gateway's metrics show 1 "ocpp2.0.1" station connected
    And the ops gateway's metrics count 1 station CALL, 1 CSMS CALLRESULT and 1 call round trip

  @ops
  Scenario: Beyond the connection limit, handshakes get 503 with Retry-After
    Given ops stations "CP_L1", "CP_L2" and "CP_L3" speaking "ocpp1.6"
    Then a fourth ops station is refused with HTTP 503 and a Retry-After header
    And the ops gateway's metrics count 1 handshake refused for "max_connections"

  @ops
  Scenario: An oversized frame closes the connection with 1009 and is counted
    Given an ops station "CP_BIG" speaking "ocpp2.0.1"
    When "CP_BIG" sends a frame of 10000 bytes
    Then the ops connection of "CP_BIG" is closed with code 1009
    And the ops gateway's metrics count 1 connection closed with code "1009"

  @ops
  Scenario: A station over its message rate gets CALLERRORs for the calls over it, and is closed when it keeps on
    # A burst of 3 frames is within the rate: call 1 goes to Kafka, 2 and 3 are refused because 1 is in flight.
    # Calls 4 to 6 are over the rate (all 6 come within a second); a station may go a burst's worth over it,
    # and the next frame over it closes the connection.
    Given an ops station "CP_FAST" speaking "ocpp2.0.1"
    When "CP_FAST" sends 6 BootNotifications back to back
    Then "CP_FAST" gets these CALLERRORs, in order, and nothing else
      | call | code         | about                   |
      | 2    | GenericError | is still in flight      |
      | 3    | GenericError | is still in flight      |
      | 4    | GenericError | rate limit exceeded     |
      | 5    | GenericError | rate limit exceeded     |
      | 6    | GenericError | rate limit exceeded     |
    When "CP_FAST" sends one more BootNotification
    Then the ops connection of "CP_FAST" is closed with code 1008
    And the ops gateway's metrics count 1 connection closed with code "1008"

  @ops
  Scenario: SIGTERM drains: not ready at once, calls in flight answered, stations closed with 1012 at the set pace
    Given ops stations "CP_D1", "CP_D2" and "CP_D3" speaking "ocpp2.0.1"
    And "CP_D1" has a Heartbeat in flight
    When the ops gateway gets SIGTERM
    Then the ops gateway's /readyz answers 503
    When the CSMS answers the Heartbeat in flight
    Then "CP_D1" receives the answer before its connection closes
    And every ops station is closed with code 1012, in the order they connected, half a second apart
    And the ops gateway exits with status 0
