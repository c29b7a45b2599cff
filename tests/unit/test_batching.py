"""The server's batcher (issue 31, item 2): batches bounded in texts and characters, shortest requests first so a long
one does not hold up the short ones that came with it, and never starved; every request gets its own results."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.serving.batching import MAX_SKIPS, Batcher
from nerforge.types import Entity


class Recorder:
    """A predictor that takes time in proportion to the characters it tags and records each batch it gets."""

    def __init__(self, seconds_per_char: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.seconds_per_char = seconds_per_char

    def __call__(self, texts: list[str]) -> list[list[Entity]]:
        self.batches.append(list(texts))
        time.sleep(self.seconds_per_char * sum(len(t) for t in texts))
        return [[Entity(t[:1], "X", 0, min(1, len(t)), 1.0)] for t in texts]


async def _run(batcher: Batcher, requests: list[list[str]], gap_s: float = 0.0) -> list[tuple[int, float]]:
    """Submit the requests (``gap_s`` apart); each one's index and when it was answered."""
    await batcher.start()
    started = time.monotonic()
    done: list[tuple[int, float]] = []

    async def one(k: int, texts: list[str]) -> None:
        await asyncio.sleep(gap_s * k)
        result = await batcher.submit(texts)
        assert [r[0].text for r in result] == [t[:1] for t in texts]  # its own results, in order
        done.append((k, time.monotonic() - started))

    await asyncio.gather(*(one(k, texts) for k, texts in enumerate(requests)))
    await batcher.stop()
    return done


def test_short_requests_go_before_a_long_one_that_came_first() -> None:
    recorder = Recorder(seconds_per_char=2e-5)
    batcher = Batcher(recorder, max_texts=8, max_chars=1000, max_wait_s=0.01)
    requests = [["L" * 5000]] + [[f"s{k} short"] for k in range(5)]
    done = dict(asyncio.run(_run(batcher, requests)))
    assert recorder.batches[0] == [f"s{k} short" for k in range(5)]  # the long one waited for the next batch
    assert recorder.batches[1] == ["L" * 5000]
    assert max(done[k] for k in range(1, 6)) < done[0]


def test_a_long_request_is_not_starved_by_a_stream_of_short_ones() -> None:
    recorder = Recorder(seconds_per_char=1e-4)
    batcher = Batcher(recorder, max_texts=4, max_chars=300, max_wait_s=0.005)
    requests = [["L" * 280]] + [[f"short text {k:02d}"] for k in range(40)]
    asyncio.run(_run(batcher, requests, gap_s=0.002))
    long_batch = next(i for i, b in enumerate(recorder.batches) if "L" * 280 in b)
    assert long_batch <= MAX_SKIPS  # passed over at most MAX_SKIPS times, then first


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=5), min_size=1, max_size=20),
    st.integers(1, 6),
    st.integers(10, 200),
)
def test_every_request_is_answered_once_within_the_batch_bounds(requests: list[list[str]], max_texts: int,
                                                                max_chars: int) -> None:  # fmt: skip
    recorder = Recorder()
    batcher = Batcher(recorder, max_texts=max_texts, max_chars=max_chars, max_wait_s=0.001)
    done = asyncio.run(_run(batcher, requests))
    assert sorted(k for k, _ in done) == list(range(len(requests)))
    assert sorted(t for b in recorder.batches for t in b) == sorted(t for r in requests for t in r)
    for batch in recorder.batches:  # one request alone may exceed the bounds; a batch of several never does
        whole = [r for r in requests if r == batch]
        assert whole or (len(batch) <= max_texts and sum(len(t) for t in batch) <= max_chars)
