"""Every ``--help`` has examples, shows defaults, and names values in plain words (issue 15)."""

from __future__ import annotations

import re

import pytest

from nerforge.cli import _command, main
from nerforge.cli.examples import EXAMPLES

COMMANDS = sorted(_command().commands)
TYPE_NAMES = re.compile(r"<(str|int|float|bool|path|list\[[^\]]*\])>")


def _help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setenv("COLUMNS", "160")
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


def test_every_command_has_examples_and_every_example_names_a_command() -> None:
    assert set(EXAMPLES) == set(COMMANDS)
    for name, lines in EXAMPLES.items():
        assert lines and all(line.startswith(f"nerforge {name} ") or line.startswith("nerforge ") for line in lines)
        assert any(line.startswith(f"nerforge {name} ") for line in lines), name


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_examples_plain_value_names_and_defaults(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _help(capsys, monkeypatch, name)
    assert "Examples:" in text and EXAMPLES[name][0] in text
    assert not TYPE_NAMES.search(text), TYPE_NAMES.findall(text)
    assert "{" not in text.split("\n", 3)[1]  # the usage line: MODEL, not {MODEL}


def test_defaults_are_shown(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    train = _help(capsys, monkeypatch, "train")
    for expected in ("[default: 16]", "[default: 0.0001]", "[default: 10]", "[default: sqlite:///mlflow.db]"):
        assert expected in train, expected
    predict = _help(capsys, monkeypatch, "predict")
    assert re.search(r"--batch-size\s+N\s+.*\[default: 32\]", predict)
    assert re.search(r"--whole-file\s+Treat", predict)  # a switch takes no value name


def test_root_help_lists_every_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^\W*{name}\s", text, re.M), name


@pytest.mark.parametrize("name", COMMANDS)
def test_description_paragraphs_flow_as_one_line_each(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 400 columns every description paragraph fits one line: no line break left in it from the docstring."""
    monkeypatch.setenv("COLUMNS", "400")
    assert main([name, "--help"]) == 0
    description = capsys.readouterr().out.split("╭")[0].splitlines()[3:]  # after the usage line
    paragraphs = "\n".join(line.strip() for line in description).strip().split("\n\n")
    assert paragraphs and all("\n" not in p for p in paragraphs), paragraphs


def test_reflow_joins_paragraph_lines_and_keeps_indented_blocks() -> None:
    from nerforge.cli import reflow

    text = "First line\n    goes on.\n\n    Second\n    still.\n\n    code  block\n      indented\n\n    - a\n    - b\n"
    assert reflow(text) == "First line goes on.\n\nSecond still.\n\ncode  block\n  indented\n\n- a\n- b"
