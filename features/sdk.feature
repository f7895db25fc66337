Feature: A CSMS written with the SDK: the README's example worker, calls and connection events

  Scenario Outline: The example worker boots a <protocol> station through a gateway
    Given a gateway on topics of its own, served by the example CSMS worker
    When the SDK station "<station>" speaking "<protocol>" sends a BootNotification
    Then the example worker accepts it with an interval of 60 seconds
    And the example worker answers its Heartbeat with the current time
    And the example worker logged that "<station>" connected, and counted its BootNotification

    Examples:
      | protocol  | station |
      | ocpp2.0.1 | SDK_201 |
      | ocpp1.6   | SDK_16  |

  Scenario: An SDK client calls a station, gets its CALLRESULT and its CALLERROR, and follows its connection
    Given a gateway on topics of its own, served by the example CSMS worker
    And an SDK client following the connection events of those topics
    When the SDK station "SDK_CALL" speaking "ocpp2.0.1" connects
    Then the SDK client sees "SDK_CALL" connected
    When the SDK client calls GetVariables on "SDK_CALL" and the station answers it
    Then send_call returns the station's GetVariables result
    When the SDK client calls Reset on "SDK_CALL" and the station answers with CALLERROR "NotSupported"
    Then send_call raises CallErrorReceived "NotSupported" from the station
    When the SDK client calls Reset on "SDK_NOT_THERE", which no gateway holds
    Then send_call raises StationOffline
    When the SDK station "SDK_CALL" disconnects
    Then the SDK client sees "SDK_CALL" disconnected
