Feature: Connection events and duplicate connections

  Scenario: A second connection for the same station replaces the first
    Given I have a charging station with unique_id "CP_DUP" and subprotocol "ocpp1.6" connected to the server
    When the station "CP_DUP" connects again with subprotocol "ocpp1.6"
    Then the first connection is closed with code 1000 and reason "replaced by a newer connection"
    And the new connection is answered
    And messages_in holds, in order, for "CP_DUP": connected, disconnected, connected

  Scenario: A CSMS call for a station that is not connected gets a CALLERROR on messages_in
    When the CSMS sends a "Reset" call with payload '{"type": "Soft"}' to the unconnected station "CP_NOBODY" speaking "ocpp1.6"
    Then the CSMS receives a CALLERROR "InternalError" for its "Reset" call with the request attached
