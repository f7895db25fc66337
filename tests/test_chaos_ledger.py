"""The invariant ledger counts exactly what the fault suite claims."""

from chaos.ledger import Answer, Ledger


def test_counts_each_kind_of_answer() -> None:
    ledger = Ledger()
    for n, at in enumerate((0.0, 1.0, 2.0, 3.0)):
        ledger.sent(f"m{n}", at)
    ledger.answered("m0", Answer.PEER, 0.5)
    ledger.answered("m1", Answer.GATEWAY, 6.0)
    ledger.answered("m2", Answer.PEER, 2.1)
    ledger.answered("m2", Answer.GATEWAY, 2.2)
    ledger.answered("other", Answer.PEER, 2.3)
    report = ledger.report(deadline=4.0)
    assert (report.calls, report.answered_by_peer, report.answered_by_gateway) == (4, 2, 1)
    assert (report.unanswered, report.answered_twice, report.unknown_answers) == (1, 1, 1)
    assert report.over_deadline == 1
    assert report.longest_seconds == 5.0
    assert not report.holds
    assert ledger.outstanding() == 1


def test_a_resend_restarts_the_clock_and_is_counted_once() -> None:
    ledger = Ledger()
    ledger.sent("m", 0.0)
    ledger.sent("m", 10.0)
    ledger.answered("m", Answer.PEER, 11.0)
    ledger.sent("m", 12.0)
    report = ledger.report(deadline=2.0)
    assert (report.calls, report.resent_after_disconnect, report.longest_seconds) == (1, 1, 1.0)
    assert report.holds


def test_an_empty_ledger_holds() -> None:
    assert Ledger().report(1.0).holds


def test_a_call_the_bus_took_late_is_timed_from_then() -> None:
    ledger = Ledger()
    ledger.sent("m", 0.0)
    ledger.accepted("m", 8.0)
    ledger.answered("m", Answer.PEER, 9.0)
    ledger.accepted("m", 20.0)
    assert ledger.report(deadline=2.0).longest_seconds == 1.0


def test_recovery_is_the_first_peer_answer_after_the_fault_not_a_gateway_answer() -> None:
    ledger = Ledger()
    ledger.sent("a", 0.0)
    ledger.answered("a", Answer.PEER, 1.0)
    ledger.sent("b", 2.0)
    ledger.answered("b", Answer.GATEWAY, 7.0)
    ledger.sent("c", 8.0)
    ledger.answered("c", Answer.PEER, 12.5)
    assert ledger.first_peer_answer_after(5.0) == 12.5
    assert ledger.first_peer_answer_after(13.0) is None


def test_the_span_of_gateway_answers_is_the_time_the_peer_could_not_answer() -> None:
    ledger = Ledger()
    for n, (at, by) in enumerate(
        ((0.0, Answer.PEER), (3.0, Answer.GATEWAY), (4.0, Answer.PEER), (8.5, Answer.GATEWAY))
    ):
        ledger.sent(f"m{n}", at)
        ledger.answered(f"m{n}", by, at + 5)
    assert ledger.gateway_answer_span() == 5.5
    assert Ledger().gateway_answer_span() == 0.0
