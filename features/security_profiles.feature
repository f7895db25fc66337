Feature: Security profiles 1, 2 and 3: nobody gets a station's connection without its credentials

  The gateway under test has a profile 1 listener (Basic auth over ws), a profile 2 listener (TLS and Basic
  auth) and a profile 3 listener (TLS with client certificates), with certificates made for this run.

  Scenario Outline: Basic auth on profile <profile>
    When "<station>" connects to the profile <profile> listener as "<username>" with the <password> password
    Then the handshake is <result>

    Examples:
      | profile | station    | username   | password | result                 |
      | 1       | CP_P1      | CP_P1      | right    | accepted               |
      | 1       | CP_P1      | CP_P1      | wrong    | refused with HTTP 401  |
      | 1       | CP_P1      | CP_OTHER   | right    | refused with HTTP 401  |
      | 1       | CP_P1      | -          | no       | refused with HTTP 401  |
      | 2       | CP_P2      | CP_P2      | right    | accepted               |
      | 2       | CP_P2      | CP_P2      | wrong    | refused with HTTP 401  |
      | 2       | CP_P2      | CP_OTHER   | right    | refused with HTTP 401  |
      | 2       | CP_P2      | -          | no       | refused with HTTP 401  |
      | 1       | CP_UNKNOWN | CP_UNKNOWN | right    | refused with HTTP 404  |
      | 1       | CP_P2      | CP_P2      | right    | refused with HTTP 403  |

  Scenario Outline: Client certificates on profile 3
    When "<station>" connects to the profile 3 listener with the <certificate> client certificate
    Then the handshake is <result>

    Examples:
      | station | certificate | result                 |
      | CP_TLS3 | valid       | accepted               |
      | CP_TLS3 | untrusted   | refused by TLS         |
      | CP_TLS3 | expired     | refused by TLS         |
      | CP_TLS3 | mismatch    | refused with HTTP 403  |
      | CP_TLS3 | no          | refused by TLS         |

  Scenario: A password rotated through the Kafka topic takes effect on the next connection
    Given the password of "CP_ROT" is set to "first-password-0123456789" through the Kafka topic
    Then "CP_ROT" connects to the profile 1 listener with "first-password-0123456789"
    When the password of "CP_ROT" is set to "second-password-0123456789" through the Kafka topic
    Then "CP_ROT" connects to the profile 1 listener with "second-password-0123456789"
    And "CP_ROT" is refused on the profile 1 listener with "first-password-0123456789"
    When the credentials of "CP_ROT" are revoked through the Kafka topic
    Then "CP_ROT" is refused with HTTP 401 on the profile 1 listener with "second-password-0123456789"

  Scenario: A station with credentials cannot be taken over through the profile 0 listener
    Given "CP_NOPIN" is connected on the profile 1 listener with its password
    When "CP_NOPIN" connects to the profile 0 listener without credentials
    Then the handshake is refused with HTTP 403
    And the first connection still answers a Heartbeat

  Scenario: An OCPP 1.6 station sends its AuthorizationKey as 20 raw bytes (OCPP-J 1.6 section 6.2.2)
    When "CP_KEY16" connects to the profile 1 listener speaking ocpp1.6 with its key as 20 raw bytes
    Then the handshake is accepted

  Scenario: Revoking through the Kafka topic closes the station's open connection
    Given the password of "CP_LIVE" is set to "live-password-0123456789" through the Kafka topic
    And "CP_LIVE" is connected on the profile 1 listener with "live-password-0123456789"
    When the credentials of "CP_LIVE" are revoked through the Kafka topic
    Then the first connection is closed with 1008 within 5 s
    And "CP_LIVE" is refused with HTTP 401 on the profile 1 listener with "live-password-0123456789"

  Scenario: Revoking in the file closes the open connection, and the id stays refused, not unknown
    Given "CP_FILE" is connected on the profile 1 listener with its password
    When "CP_FILE" is revoked in the credentials file
    Then the first connection is closed with 1008 within 5 s
    And "CP_FILE" is refused with HTTP 401 on the profile 1 listener with "CP_FILE-password-0123456789"
