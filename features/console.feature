@console
Feature: The web console shows stations live and sends them commands, in a real browser

  The console (`csms-server console`) follows a gateway's topics; headless Chromium, driven by
  Playwright, looks at its page and uses its command form like an operator.

  Scenario Outline: A <protocol> station appears, reboots on a Reset sent from the page, and charges on the chart
    Given the web console of a gateway and CSMS on topics of their own, open in headless Chromium
    When the simulated station "<station>" speaking "<protocol>" connects to that gateway
    Then the page lists "<station>" as connected, with vendor "OpenVendor" and model "SimCharger"
    When I open "<station>" on the page
    Then its timeline shows its BootNotification and a Heartbeat, each with the CSMS's answer and a round-trip time
    When I send "Reset" from the command form with its prefilled payload
    Then the page shows the station's answer "Accepted"
    And the timeline shows "<station>" disconnecting and booting again
    When I send "<start>" from the command form with its prefilled payload
    Then the page shows the station's answer "Accepted"
    And the transaction chart gets points as meter values arrive

    Examples:
      | protocol  | station     | start                   |
      | ocpp2.0.1 | CONSOLE_201 | RequestStartTransaction |
      | ocpp1.6   | CONSOLE_16  | RemoteStartTransaction  |

  Scenario: The station's own CALLERROR and one the gateway writes are told apart
    Given the web console of a gateway and CSMS on topics of their own, open in headless Chromium
    When the simulated station "CONSOLE_ERR" speaking "ocpp2.0.1" connects to that gateway
    And I open "CONSOLE_ERR" on the page
    And I send "ClearCache" from the command form with the payload {}
    Then the page shows the station's answer "callerror"
    And the timeline shows a CALLERROR answering "ClearCache", not marked as the gateway's
    When I send "Reset" from the command form with the payload {"type": "Sometimes"}
    Then the page shows the station's answer "callerror"
    And the timeline shows a CALLERROR answering "Reset", marked as the gateway's own
