"""The raw-text word tokenizer: offsets always point back into the text, nothing visible is dropped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.errors import ModelError
from nerforge.model_dir import ModelMeta
from nerforge.prediction.words import WORDS_V1, WORDS_V2, Word, get_word_tokenizer, tokenize_words, tokenize_words_v1

TRICKY = [
    "Ünïcödé  naïve café — “quoted” ‘text’ 東京 🙂 émoji",
    "multiple   spaces\tand\ttabs\n\nnew\r\nlines\u00a0nbsp\u2003em",
    "punctuation!!! (parens) [brackets] {braces} a,b;c:d... end.",
    "e-mail don't C++ Node.js $1,000.50 10:30 -5% @user #tag",
    "combining: Cafe\u0301 re\u0301sume\u0301; zero\u200bwidth",
    "\u2028line separator\u2029paragraph\x00nul\x1a",
]


INVISIBLE = "\u200b\u2060\ufeff"  # separators that are not whitespace: never part of a word, never a word


def _gap_is_blank(gap: str) -> bool:
    return gap.strip().strip(INVISIBLE).strip() == "" and all(ch.isspace() or ch in INVISIBLE for ch in gap)


def _check_roundtrip(text: str, words: list[Word]) -> None:
    previous_end = 0
    for word in words:
        assert word.text, "no empty words"
        assert text[word.start : word.end] == word.text
        assert word.start >= previous_end, "words are in order and do not overlap"
        assert not any(ch.isspace() for ch in word.text), f"whitespace inside {word!r}"
        assert _gap_is_blank(text[previous_end : word.start]), f"visible text dropped before {word!r}"
        previous_end = word.end
    assert _gap_is_blank(text[previous_end:]), "visible text dropped at the end"


@pytest.mark.parametrize("tokenizer", [tokenize_words, tokenize_words_v1])
@pytest.mark.parametrize("text", TRICKY)
def test_words_offsets_roundtrip_on_tricky_text(text: str, tokenizer) -> None:
    words = tokenizer(text)
    assert words
    _check_roundtrip(text, words)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_words_offsets_roundtrip_on_random_text(text: str) -> None:
    _check_roundtrip(text, tokenize_words(text))
    _check_roundtrip(text, tokenize_words_v1(text))


@pytest.mark.parametrize("text", ["", " ", "   \n\t  \r\n", "\u00a0\u2003"])
def test_words_empty_and_whitespace_only_give_no_words(text: str) -> None:
    assert tokenize_words(text) == []


def test_words_keeps_hyphenated_and_apostrophe_words_whole() -> None:
    words = [w.text for w in tokenize_words("An e-mail, don't wait!")]
    assert words == ["An", "e-mail", ",", "don't", "wait", "!"]


def test_words_v2_keeps_technology_names_and_abbreviations_whole() -> None:
    words = [
        w.text
        for w in tokenize_words("Peter's C++, C# and Node.js at AT&T in the U.S. cost $1,000 (see https://x.org/a).")
    ]
    assert words == [
        "Peter",
        "'s",
        "C++",
        ",",
        "C#",
        "and",
        "Node.js",
        "at",
        "AT&T",
        "in",
        "the",
        "U.S.",
        "cost",
        "$",
        "1,000",
        "(",
        "see",
        "https://x.org/a",
        ")",
        ".",
    ]
    assert [w.text for w in tokenize_words_v1("C++ Node.js")] == ["C", "+", "+", "Node", ".", "js"]


def test_words_splits_punctuation_with_offsets() -> None:
    assert tokenize_words("Hi, Ann.") == [Word("Hi", 0, 2), Word(",", 2, 3), Word("Ann", 4, 7), Word(".", 7, 8)]


def test_words_is_the_default_of_model_metadata() -> None:
    meta = ModelMeta(tags=["O"], max_length=8, stride=0)
    assert meta.word_tokenizer == WORDS_V2
    assert get_word_tokenizer(meta.word_tokenizer) is tokenize_words
    assert get_word_tokenizer(WORDS_V1) is tokenize_words_v1


def test_words_unknown_tokenizer_name_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="nerforge.words.v9"):
        get_word_tokenizer("nerforge.words.v9")
