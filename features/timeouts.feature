Feature: Every call gets exactly one answer, even when the other side stays silent

  Scenario: A station call the CSMS does not answer gets a CALLERROR after the timeout
    Given a charging station "CP_T1" with subprotocol "ocpp2.0.1" connected to a gateway that no CSMS serves
    When I send a BootNotification message with vendor "VendorX" and model "ModelY"
    Then the station receives a CALLERROR "InternalError" for its call after the gateway's timeout

  Scenario: A CSMS call the station does not answer gets a CALLERROR on messages_in
    Given a charging station "CP_T2" with subprotocol "ocpp1.6" connected to a gateway that no CSMS serves
    When the CSMS sends the station a "Reset" call with payload '{"type": "Soft"}'
    Then the station receives the "Reset" call
    And the CSMS receives a CALLERROR "InternalError" for its "Reset" call with the request attached
