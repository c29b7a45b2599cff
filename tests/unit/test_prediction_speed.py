"""time_batches: which sentences each batch size tags, what is counted, latency percentiles, and refusals."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from nerforge.errors import UsageError
from nerforge.prediction.speed import time_batches

SENTENCES = [["w"] * n for n in range(1, 41)]  # 40 sentences of 1..40 words


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (sentences in the call, batch size)

    def __call__(self, sentences: Sequence[Sequence[str]], batch_size: int) -> list[list[str]]:
        self.calls.append((len(sentences), batch_size))
        time.sleep(0.001 * len(sentences))
        return [[f"B-X{batch_size}"] + ["O"] * (len(s) - 1) for s in sentences]


def test_each_batch_size_is_timed_over_the_right_sentences() -> None:
    tag = Recorder()
    timings, tags = time_batches(tag, SENTENCES, [1, 8, 32], latency_sentences=10)
    assert [t.batch_size for t in timings] == [32, 8, 1]
    assert tag.calls[:2] == [(40, 32), (40, 8)] and tag.calls[2:] == [(1, 1)] * 10
    assert all(t.words == sum(range(1, 41)) and t.sentences == 40 for t in timings[:2])
    latency = timings[2]
    assert latency.sentences == 10 and latency.words == sum(range(1, 41, 4))  # spread: every 4th sentence
    assert 1.0 <= latency.p50_ms <= latency.p95_ms  # each call sleeps 1 ms
    assert timings[0].p50_ms is None
    assert tags is not None and tags[0] == ["B-X32"]  # the largest batch size's output
    for t in timings:
        assert t.seconds >= 0.001 * t.sentences and t.words_per_s == pytest.approx(t.words / t.seconds)


def test_only_batch_one_returns_no_tags_and_fewer_sentences_than_asked_time_them_all() -> None:
    timings, tags = time_batches(Recorder(), SENTENCES[:3], [1], latency_sentences=50)
    assert tags is None and timings[0].sentences == 3


@pytest.mark.parametrize(
    ("sentences", "sizes", "latency"), [([], [1], 5), (SENTENCES, [0, 8], 5), (SENTENCES, [], 5), (SENTENCES, [1], 0)]
)
def test_bad_requests_are_refused(sentences: list, sizes: list[int], latency: int) -> None:
    with pytest.raises(UsageError):
        time_batches(Recorder(), sentences, sizes, latency)
