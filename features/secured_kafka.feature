@secured_kafka
Feature: A secured, replicated Kafka: three SASL_SSL nodes with SCRAM users and a CA of their own

  Scenario Outline: A station of each version boots through the secured cluster
    Given a charging station "<station>" with subprotocol "<subprotocol>" through the secured cluster
    When I send a BootNotification message with vendor "VendorX" and model "ModelY"
    Then I should receive "Accepted" as response
    And the secured cluster's messages_in holds the BootNotification of "<station>", on 3 replicas with 2 in sync at least

    Examples:
      | station  | subprotocol |
      | SEC_CP_1 | ocpp1.6     |
      | SEC_CP_2 | ocpp2.0.1   |
      | SEC_CP_3 | ocpp2.1     |

  Scenario: A wrong Kafka password ends a program with one clear line and exit status 1
    When a gateway starts on the secured cluster with the setting "OCPPGW_KAFKA__SASL_PASSWORD" = "not-the-password-123"
    Then it exits with status 1 and a line saying "refused user 'ocppgw'", no traceback and no password

  Scenario: An untrusted broker certificate ends a program with one clear line and exit status 1
    When a gateway starts on the secured cluster trusting only another CA
    Then it exits with status 1 and a line saying "presented a certificate that is not trusted", no traceback and no password
