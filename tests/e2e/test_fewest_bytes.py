"""A byte budget through the real nginx."""
from __future__ import annotations

from tests.support.stack import Stack


def test_through_nginx_a_budget_that_cannot_be_met_answers_200_and_says_so(stack: Stack) -> None:
    over = stack.url("road-1920x1080.jpg", width=400, max_bytes=100)
    miss = stack.get(over)
    assert miss.status == 200 and miss.image().size == (400, 225)
    assert miss.headers["x-image-over-budget"] == "1"
    hit = stack.get(over)
    assert hit.status == 200 and hit.body == miss.body  # nginx's cache keeps no headers of ours
    fits = stack.get(stack.url("road-1920x1080.jpg", width=400, max_bytes=15000))
    assert fits.status == 200 and len(fits.body) <= 15000 and "x-image-over-budget" not in fits.headers
    auto = stack.get(stack.url("road-1920x1080.jpg", width=400, quality="auto"))
    assert auto.status == 200 and auto.image().size == (400, 225)
