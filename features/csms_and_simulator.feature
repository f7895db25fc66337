Feature: The reference CSMS and the simulated stations, end to end through the gateway and Kafka

  Scenario Outline: A full charging session is answered call by call
    Given a simulated "<protocol>" station "<station>" that charges after booting
    Then messages_in shows the calls of "<station>" in order: <calls>
    And the CSMS answered every call of "<station>" with a CALLRESULT

    Examples:
      | protocol  | station   | calls |
      | ocpp1.6   | CP_SES16  | BootNotification, StatusNotification:Available, StatusNotification:Preparing, Authorize, StartTransaction, StatusNotification:Charging, MeterValues, StopTransaction, StatusNotification:Available |
      | ocpp2.0.1 | CP_SES201 | BootNotification, StatusNotification:Available, Authorize, StatusNotification:Occupied, TransactionEvent:Started, TransactionEvent:Updated, TransactionEvent:Ended, StatusNotification:Available |
      | ocpp2.1   | CP_SES21  | BootNotification, StatusNotification:Available, Authorize, StatusNotification:Occupied, TransactionEvent:Started, TransactionEvent:Updated, TransactionEvent:Ended, StatusNotification:Available |

  Scenario: csms-server call reads and resets a 2.0.1 station
    Given a simulated "ocpp2.0.1" station "CP_CALL201"
    When I run csms-server call "CP_CALL201" "GetVariables" '{"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}'
    Then it exits 0 and prints a result whose "getVariableResult.0.attributeStatus" is "Accepted"
    When I run csms-server call "CP_CALL201" "Reset" '{"type": "Immediate"}'
    Then it exits 0 and prints a result whose "status" is "Accepted"
    And "CP_CALL201" boots again

  Scenario: csms-server call reads a 1.6 station's configuration and reports errors
    Given a simulated "ocpp1.6" station "CP_CALL16"
    When I run csms-server call "CP_CALL16" "GetConfiguration" '{"key": ["HeartbeatInterval"]}'
    Then it exits 0 and prints a result whose "configurationKey.0.key" is "HeartbeatInterval"
    When I run csms-server call "CP_CALL16" "FlyToTheMoon" '{}'
    Then it exits 1 and prints a result whose "errorCode" is "NotImplemented"
    When I run csms-server call "CP_NOT_THERE" "Reset" '{"type": "Soft"}'
    Then it exits 3

  Scenario: A station killed and restarted reconnects and boots again
    Given a simulated "ocpp1.6" station "CP_KILL"
    When the simulator of "CP_KILL" is killed with SIGKILL and started again
    Then "CP_KILL" boots again
