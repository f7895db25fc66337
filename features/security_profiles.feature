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
