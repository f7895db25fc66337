Feature: TLS listeners serve the cipher suites OCPP 2.0.1 requires, over an RSA and an ECDSA certificate

  A00.FR.318/.421: the CSMS supports at least TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_RSA_WITH_AES_128_GCM_SHA256 and TLS_RSA_WITH_AES_256_GCM_SHA384,
  which takes two certificates. The gateway under test has a profile 2 listener with both, and a CSMS of its own.

  Scenario: A station offering only an RSA suite and one offering only an ECDSA suite both boot
    Given a gateway whose profile 2 listener has an RSA and an ECDSA certificate
    When "CP_TLS_RSA" connects to it over TLS 1.2 offering only TLS_RSA_WITH_AES_128_GCM_SHA256
    Then the connection of "CP_TLS_RSA" uses TLS_RSA_WITH_AES_128_GCM_SHA256 and the RSA certificate
    And "CP_TLS_RSA" boots and is Accepted
    When "CP_TLS_ECDSA" connects to it over TLS 1.2 offering only TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    Then the connection of "CP_TLS_ECDSA" uses TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 and the ECDSA certificate
    And "CP_TLS_ECDSA" boots and is Accepted
