"""Bearer parsing and the per-address limit on failed attempts."""

from __future__ import annotations

import pytest
from idstation.mqtt.central.service.auth import FailureLimiter, bearer_token


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer ", None), ("", None)],
)
def test_bearer_token_is_taken_only_from_a_bearer_header(header: str, token: str | None) -> None:
    assert bearer_token({"authorization": header} if header else {}) == token


def test_an_address_is_held_back_after_too_many_failures_and_released_later() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(limit=3, window_s=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == pytest.approx(60)
    assert limiter.retry_after("10.0.0.2") == 0  # other addresses are not affected
    clock.now += 61
    assert limiter.retry_after("10.0.0.1") == 0


def test_the_limiter_forgets_old_addresses_when_full() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(limit=1, window_s=60, clock=clock, max_addresses=10)
    for i in range(100):
        limiter.failed(f"10.0.0.{i}")
    assert len(limiter._failures) <= 10
    assert limiter.retry_after("10.0.0.99") > 0
