"""Word shape features: exact flags of tricky words, sentence-level flags, packing, window rows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.modeling.features import NUM_SHAPE_FLAGS, SHAPE_FLAGS, _word_flags, feature_row, shape_flags, shape_ids


def on(words: list[str], i: int) -> list[str]:
    return [name for name, bit in zip(SHAPE_FLAGS, shape_flags(words)[i], strict=True) if bit]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("hired", ["word", "all_lower"]),
        ("Paris", ["word", "init_cap", "cap_not_first"]),
        ("McDonald", ["word", "init_cap", "mixed_case", "cap_not_first"]),
        ("iPhone", ["word", "mixed_case"]),
        ("eBay", ["word", "mixed_case"]),
        ("IBM", ["word", "all_caps"]),
        ("U.S.", ["word", "all_caps", "inner_punct"]),
        ("AT&T", ["word", "all_caps", "inner_punct"]),
        ("O'Neill", ["word", "init_cap", "mixed_case", "inner_punct", "cap_not_first"]),
        ("e-mail", ["word", "all_lower", "inner_punct"]),
        ("I", ["word", "init_cap", "cap_not_first"]),  # one cased letter: a capital, not "all caps"
        ("A4", ["word", "init_cap", "has_digit", "cap_not_first"]),
        ("1996", ["word", "has_digit", "all_digits", "number_like"]),
        ("1996-12-06", ["word", "has_digit", "number_like"]),
        ("1,000", ["word", "has_digit", "number_like"]),
        ("2.5%", ["word", "has_digit", "number_like"]),
        ("3rd", ["word", "all_lower", "has_digit"]),
        (",", ["word", "punctuation"]),
        ("--", ["word", "punctuation"]),
        ("&", ["word", "punctuation"]),
        ("Zürich", ["word", "init_cap", "cap_not_first"]),
        ("ÉCOLE", ["word", "all_caps"]),
        ("東京", ["word", "uncased_letters"]),
        ("", ["word"]),
    ],
)
def test_shape_flags_of_a_word_in_mid_sentence(word: str, expected: list[str]) -> None:
    assert on(["the", word, "x"], 1) == expected


def test_shape_flags_exact_vector() -> None:
    # order: word init_cap all_caps all_lower mixed has_digit all_digits number punct inner first cap_not_first
    #        upper_sentence uncased
    assert shape_flags(["Acme", "hired", "McDonald"]) == [
        (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0),
        (1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0),
    ]
    assert shape_ids(["Acme", "hired", "McDonald"]) == [1 | 2 | 1024, 1 | 8, 1 | 2 | 16 | 2048]


def test_first_word_after_sentence_end() -> None:
    words = ["He", "left", ".", "Then", "Ann", "came", "?!", "Bob", "too"]
    assert [bool(f[SHAPE_FLAGS.index("first_word")]) for f in shape_flags(words)] == [
        True, False, False, True, False, False, False, True, False
    ]  # fmt: skip
    assert "cap_not_first" in on(words, 4) and "cap_not_first" not in on(words, 3)


def test_upper_sentence_marks_headlines_only() -> None:
    headline = "JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .".split()
    assert all(f[SHAPE_FLAGS.index("upper_sentence")] for f in shape_flags(headline))
    normal = "EU rejects German call to boycott British lamb .".split()
    assert not any(f[SHAPE_FLAGS.index("upper_sentence")] for f in shape_flags(normal))
    assert not shape_flags(["IBM"])[0][SHAPE_FLAGS.index("upper_sentence")]  # one word is no headline


def reference_flags(words: list[str]) -> list[list[int]]:
    """The flags computed word by word with no cache, straight from their definitions (the first implementation)."""
    cased = [[ch for ch in w if ch.isupper() or ch.islower()] for w in words]
    long = [c for c in cased if len(c) >= 2]
    upper = len(long) >= 2 and 2 * sum(all(ch.isupper() for ch in c) for c in long) > len(long)
    out = []
    for i, word in enumerate(words):
        first = i == 0 or (bool(words[i - 1]) and all(ch in ".!?…" for ch in words[i - 1]))
        flags = _word_flags(word, first, upper)
        out.append([int(flags[name]) for name in SHAPE_FLAGS])
    return out


@given(
    st.lists(
        st.sampled_from(["IBM", "U.S.", "the", "Paris", ".", "?!", "a", "McDonald", "1,000", "東京", ""])
        | st.text(max_size=8),
        max_size=12,
    )
)
def test_shape_ids_match_the_flag_definitions(words: list[str]) -> None:
    ids = shape_ids(words)
    assert len(ids) == len(words)
    assert all(0 < value < 2**NUM_SHAPE_FLAGS for value in ids)
    expected = reference_flags(words)
    assert [[(value >> k) & 1 for k in range(NUM_SHAPE_FLAGS)] for value in ids] == expected
    assert [list(f) for f in shape_flags(words)] == expected
    assert shape_ids(words) == ids  # the per-word cache gives the same answer the second time


def test_feature_row_puts_ids_on_first_pieces_only() -> None:
    assert feature_row({0: 1, 2: 4}, 6, [7, 9, 11]) == [0, 7, 0, 0, 11, 0]
