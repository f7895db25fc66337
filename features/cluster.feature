Feature: Many gateway instances: every messages_out record reaches the one gateway that holds the station

  Each scenario runs three gateway instances in one consumer group and a CSMS, on topics of their own.

  @cluster
  Scenario: Stations spread over three gateways are all reachable, each record read by exactly one gateway
    Given 6 stations connected round-robin to the cluster's gateways and booted
    When the CSMS calls every station with "Reset" through the route table
    Then every station answers and the CSMS gets each answer with the request attached
    And the gateways read every messages_out record exactly once and passed none on

  @cluster
  Scenario: A gateway killed with SIGKILL: its stations reconnect to the others and are reachable again
    Given 6 stations connected round-robin to the cluster's gateways and booted
    When gateway 1 of the cluster is killed with SIGKILL
    And its stations reconnect to the other gateways and boot
    And the CSMS calls every station with "Reset" through the route table
    Then every station answers and the CSMS gets each answer with the request attached
    And every station was reachable again within 10 seconds of the kill

  @cluster
  Scenario: A station reconnects to another gateway while its old socket is still open
    Given station "CP_MOVE" connected to gateway 1 of the cluster and booted
    And the CSMS called "CP_MOVE" with "Reset" and the station received it but did not answer
    When "CP_MOVE" connects to gateway 2 of the cluster and boots
    Then the old connection is closed with code 1000 and reason "replaced by a newer connection on another gateway"
    And the CSMS receives a CALLERROR "InternalError" for the unanswered call on the cluster's messages_in
    And the CSMS's next call reaches "CP_MOVE" on gateway 2

  @cluster @two_partitions
  Scenario: More gateways than partitions is reported, and the gateway without a partition refuses stations
    Then one gateway of the cluster reports that it owns no partition
    And that gateway refuses a station with HTTP 503 and a Retry-After header
