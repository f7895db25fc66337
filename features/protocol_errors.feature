Feature: Bad input gets a spec-correct answer and never reaches Kafka

  Scenario: No common subprotocol: the handshake completes without one, then the gateway closes
    Given a station "CP_OLD" offering subprotocols "ocpp1.5" connects to the server
    Then the handshake selected no subprotocol
    And the gateway closes the connection with code 1002

  Scenario Outline: A frame that is not JSON gets a CALLERROR and nothing reaches Kafka
    Given I have a charging station with unique_id "<unique_id>" and subprotocol "<subprotocol>" connected to the server
    When the station sends the text "this is { not json"
    Then the station receives a CALLERROR "<code>" for message id "-1"
    And nothing but the connection event reached messages_in for "<unique_id>"

    Examples:
      | unique_id | subprotocol | code               |
      | CP_BAD16  | ocpp1.6     | FormationViolation |
      | CP_BAD201 | ocpp2.0.1   | RpcFrameworkError  |
      | CP_BAD21  | ocpp2.1     | RpcFrameworkError  |

  Scenario: A binary frame is an error, not a crash
    Given I have a charging station with unique_id "CP_BIN" and subprotocol "ocpp2.0.1" connected to the server
    When the station sends a binary frame
    Then the station receives a CALLERROR "RpcFrameworkError" for message id "-1"
    And nothing but the connection event reached messages_in for "CP_BIN"

  Scenario: An invalid station id in the URL is refused before the handshake
    Then connecting as "bad:id" is refused with HTTP 400

  Scenario: OCPP 2.0.1 answers an unknown message type with MessageTypeNotSupported
    Given I have a charging station with unique_id "CP_TYPE" and subprotocol "ocpp2.0.1" connected to the server
    When the station sends the text "[7, "m-7", "Whatever", {}]"
    Then the station receives a CALLERROR "MessageTypeNotSupported" for message id "m-7"
    And nothing but the connection event reached messages_in for "CP_TYPE"

  Scenario: A second CALL before the first is answered is refused
    Given a charging station "CP_TWO" with subprotocol "ocpp2.0.1" connected to a gateway that no CSMS serves
    When I send a BootNotification message with vendor "VendorX" and model "ModelY"
    And the station sends the text "[2, "second", "Heartbeat", {}]"
    Then the station receives a CALLERROR "GenericError" for message id "second"
