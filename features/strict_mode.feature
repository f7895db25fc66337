Feature: Strict mode: payloads checked against the official schemas, both directions, each version

  Each scenario starts a gateway that enforces every schema, on topics no CSMS reads; the scenario is the CSMS.

  @strict
  Scenario Outline: An invalid station CALL gets the version's CALLERROR and never reaches Kafka
    Given an ops station "<station>" speaking "<protocol>"
    When "<station>" sends a BootNotification with <problem>
    Then "<station>" receives a CALLERROR "<code>" for it
    And nothing of "<station>" but its connection event reached the ops messages_in before its next call

    Examples:
      | station  | protocol  | problem                | code                          |
      | CP_S16a  | ocpp1.6   | a required field gone  | ProtocolError                 |
      | CP_S16b  | ocpp1.6   | a number for a string  | TypeConstraintViolation       |
      | CP_S16c  | ocpp1.6   | an unknown property    | FormationViolation            |
      | CP_S201a | ocpp2.0.1 | a required field gone  | OccurrenceConstraintViolation |
      | CP_S201b | ocpp2.0.1 | an unknown property    | FormatViolation               |
      | CP_S201c | ocpp2.0.1 | a value not in its enum | PropertyConstraintViolation  |
      | CP_S21a  | ocpp2.1   | a required field gone  | OccurrenceConstraintViolation |
      | CP_S21b  | ocpp2.1   | a number for a string  | TypeConstraintViolation       |

  @strict
  Scenario Outline: An invalid CSMS CALL is answered with a CALLERROR on messages_in and never reaches the station
    Given an ops station "<station>" speaking "<protocol>"
    When the CSMS sends "<station>" the call Reset '<bad>'
    Then the CSMS receives a CALLERROR "PropertyConstraintViolation" for it on the ops messages_in
    When the CSMS sends "<station>" the call Reset '<good>'
    Then the next frame "<station>" receives is that call

    Examples:
      | station  | protocol  | bad                   | good                   |
      | CP_C16   | ocpp1.6   | {"type": "Sideways"}  | {"type": "Soft"}       |
      | CP_C201  | ocpp2.0.1 | {"type": "Sideways"}  | {"type": "OnIdle"}     |
      | CP_C21   | ocpp2.1   | {"type": "Sideways"}  | {"type": "Immediate"}  |

  @strict
  Scenario: An invalid 2.1 station CALLRESULT gets a CALLRESULTERROR, and the CSMS a CALLERROR
    Given an ops station "CP_R21" speaking "ocpp2.1"
    When the CSMS sends "CP_R21" the call Reset '{"type": "Immediate"}'
    And "CP_R21" answers it with '{"status": "Maybe"}'
    Then "CP_R21" receives a CALLRESULTERROR "PropertyConstraintViolation" for it
    And the CSMS receives a CALLERROR "PropertyConstraintViolation" for it on the ops messages_in

  @strict
  Scenario: An invalid CSMS CALLRESULT reaches the station as a CALLERROR
    Given an ops station "CP_R16" speaking "ocpp1.6"
    When "CP_R16" sends a BootNotification with nothing wrong
    And the CSMS answers it with '{"status": "Accepted"}'
    Then "CP_R16" receives a CALLERROR "ProtocolError" for it
