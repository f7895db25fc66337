Feature: Stations boot and heartbeat through the gateway, Kafka and the reference CSMS

  Scenario Outline: Successful BootNotification and Heartbeat
    Given I have a charging station with unique_id "<unique_id>" and subprotocol "<subprotocol>" connected to the server
    When I send a BootNotification message with vendor "<vendor>" and model "<model>"
    Then I should receive "<response>" as response
    Then I start sending heartbeats for "<interval>" seconds
    Then close the connection

    Examples:
      | unique_id | subprotocol | vendor  | model  | response | interval |
      | CP_1      | ocpp2.0.1   | VendorX | ModelY | Accepted | 3        |
      | CP_2      | ocpp1.6     | VendorX | ModelY | Accepted | 3        |
      | CP_3      | ocpp2.1     | VendorX | ModelY | Accepted | 3        |

  Scenario: The gateway picks the station's most preferred subprotocol it supports
    Given a station "CP_PREF" offering subprotocols "ocpp1.5,ocpp2.1,ocpp1.6" connects to the server
    Then the handshake selected subprotocol "ocpp2.1"

  Scenario: The station's identity is percent-decoded from the last path segment
    Given I have a charging station with unique_id "RDAM|123" and subprotocol "ocpp2.0.1" connected to the server
    When I send a BootNotification message with vendor "VendorX" and model "ModelY"
    Then I should receive "Accepted" as response
    And the records on messages_in for "RDAM|123" carry station id "RDAM|123"
