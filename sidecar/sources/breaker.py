"""Per-source health: whether a source is down (circuit breaker). Its counts are metrics (`sidecar.observe.metrics`).

A source that fails `threshold` times in a row is *down* for `down_for` seconds: the chain skips it
instead of paying its timeout on every request. When the period is over, one request is let through
as a probe (the others keep skipping it for another period); its success brings the source back, its
failure keeps it down. Pure logic: the caller passes the time, so it is tested with plain numbers.
"""
from __future__ import annotations


class CircuitBreaker:
    def __init__(self, threshold: int, down_for: float) -> None:
        if threshold < 1 or down_for <= 0:
            raise ValueError("threshold must be at least 1 and down_for positive")
        self.threshold, self.down_for = threshold, down_for
        self.failures = 0  # consecutive
        self.until = 0.0  # while down: when the next probe may go

    @property
    def down(self) -> bool:
        return self.failures >= self.threshold

    def allow(self, now: float) -> bool:
        """May a request use the source now? While down, only one probe per period is let through."""
        if not self.down:
            return True
        if now >= self.until:
            self.until = now + self.down_for  # the probe's slot; a lost probe frees it after a period
            return True
        return False

    def succeeded(self) -> bool:
        """Record an answer (found or not found). Returns True if this brings a down source back."""
        was_down = self.down
        self.failures = 0
        return was_down

    def failed(self, now: float) -> bool:
        """Record a failure or timeout. Returns True if this one marks the source down."""
        self.failures += 1
        if self.failures >= self.threshold:
            self.until = now + self.down_for
        return self.failures == self.threshold
