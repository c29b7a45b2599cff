"""The CLI as a stranger meets it, through the real console script: every usage mistake is a usage line plus one
error line and exit 2 (never a traceback); Ctrl-C and SIGTERM exit 130 and 143 and leave nothing half-written; an
output that cannot or must not be written is refused before any work, and a user's files are never moved or deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import build_tiny_token_model
from nerforge import __version__
from nerforge.cli import main

SCRIPT = Path(sys.executable).with_name("nerforge")


def run_cli(*args: str, cwd: Path | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed at {SCRIPT} (pip install -e .)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300, **kwargs)


MISTAKES = {
    "bare": [],
    "typo": ["trian"],
    "bad value": ["train", "--epochs", "abc"],
    "bad int": ["predict", "m", "--text", "x", "--batch-size", "many"],
    "missing argument": ["evaluate"],
    "unknown flag": ["train", "--bogus"],
    "unknown flag of a subcommand": ["inspect", "x.conll", "--colour"],
    "bad path": ["evaluate", "/nonexistent/model", "/nonexistent/dev.conll"],
    "bad choice": ["convert", "/nonexistent/a.conll", "b.conll", "--scheme", "iob9"],
    "bad config": ["train", "/nonexistent/job.toml"],
}


@pytest.mark.parametrize("args", list(MISTAKES.values()), ids=list(MISTAKES))
def test_usage_mistakes_exit_2_without_traceback(args: list[str], tmp_path: Path) -> None:
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr + proc.stdout
    if not args:  # bare: the help, which lists the commands
        assert "Usage" in proc.stdout + proc.stderr and "train" in proc.stdout + proc.stderr
    else:  # a usage line (or none) and one error line
        error_lines = [ln for ln in proc.stderr.splitlines() if ln.lower().startswith("error")]
        assert len(error_lines) == 1, proc.stderr


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"nerforge {__version__}"


def _conll(path: Path, sentences: int) -> Path:
    lines = []
    for i in range(sentences):
        lines += [f"Alice{i % 7}\tB-PER", "met\tO", "Bob\tB-PER", "in\tO", "Paris\tB-LOC", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _hidden_leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_signal_during_training_exits_with_its_code_and_leaves_no_temp_file(
    tmp_path: Path, tiny_encoder: Path, sig: int, code: int, word: str
) -> None:
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed at {SCRIPT}")
    train = _conll(tmp_path / "train.conll", 64)
    out = tmp_path / "model"
    proc = subprocess.Popen(
        [str(SCRIPT), "train", "--train", str(train), "--output", str(out), "--model", str(tiny_encoder),
         "--max-steps", "100000", "--batch-size", "2", "--no-tracking"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    resume = tmp_path / "model.work" / "resume.json"
    deadline = time.monotonic() + 120
    while not resume.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # well into the optimizer steps
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert any(line.strip().startswith(word) for line in err.splitlines()), err[-500:]  # on a line of its own
    assert "with --resume continues from it" in err or "no checkpoint was written yet" in err, err[-500:]
    assert "Traceback" not in err
    assert not out.exists()
    assert _hidden_leftovers(tmp_path, "model") == []  # no temp directory, no lock file
    # the next run is not blocked by the killed one's lock, and may resume its work directory
    assert main(["train", "--train", str(train), "--output", str(out), "--model", str(tiny_encoder),
                 "--max-steps", "2", "--no-tracking"]) == 0  # fmt: skip
    assert (out / "nerforge.json").is_file()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    return build_tiny_token_model(tiny_encoder, tmp_path_factory.mktemp("model") / "m")


def test_export_never_deletes_a_users_files(tmp_path: Path, model_dir: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "notes.txt").write_text("x", encoding="utf-8")
    proc = run_cli("export", str(model_dir), "--onnx", "--output", str(folder))
    assert proc.returncode == 2, proc.stderr
    assert "not a nerforge ONNX export" in proc.stderr and str(folder) in proc.stderr
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "x"

    a_file = tmp_path / "model.onnx.dir"
    a_file.write_text("mine", encoding="utf-8")
    proc = run_cli("export", str(model_dir), "--onnx", "--output", str(a_file))
    assert proc.returncode == 2 and "not a folder" in proc.stderr, proc.stderr
    assert a_file.read_text(encoding="utf-8") == "mine"
    assert _hidden_leftovers(tmp_path, a_file.name) == []


@pytest.mark.parametrize("where", ["same", "inside"])
def test_export_into_its_source_is_refused(model_dir: Path, where: str) -> None:
    target = model_dir if where == "same" else model_dir / "onnx"
    before = sorted(p.name for p in model_dir.iterdir())
    proc = run_cli("export", str(model_dir), "--onnx", "--output", str(target))
    assert proc.returncode == 2, proc.stderr
    assert "source" in proc.stderr
    assert sorted(p.name for p in model_dir.iterdir()) == before


def test_train_refuses_bad_outputs_before_reading_anything(tmp_path: Path, tiny_encoder: Path) -> None:
    train = _conll(tmp_path / "train.conll", 4)
    users = tmp_path / "users"
    users.mkdir()
    (users / "thesis.tex").write_text("x", encoding="utf-8")
    a_file = tmp_path / "out.bin"
    a_file.write_text("x", encoding="utf-8")
    for output, expected in ((users, "not a nerforge model directory"), (a_file, "not a folder"),
                             (a_file / "model", "is a file, not a folder"), (train, "not a folder")):  # fmt: skip
        proc = run_cli("train", "--train", str(train), "--output", str(output), "--model", str(tiny_encoder),
                       "--no-tracking")  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert (users / "thesis.tex").is_file() and a_file.read_text(encoding="utf-8") == "x"
    assert train.read_text(encoding="utf-8").startswith("Alice0")


def test_predict_output_checked_before_tagging(tmp_path: Path, model_dir: Path) -> None:
    texts = tmp_path / "in.txt"
    texts.write_text("Alice met Bob\n", encoding="utf-8")
    records = tmp_path / "in.jsonl"
    records.write_text('{"text": "Alice met Bob"}\n', encoding="utf-8")
    (tmp_path / "folder.jsonl").mkdir()
    for source, output, expected in ((texts, tmp_path / "folder.jsonl", "is a folder"),
                                     (texts, texts / "x.jsonl", "is a file"),
                                     (records, records, "is the INPUT file")):  # fmt: skip
        proc = run_cli("predict", str(model_dir), str(source), "--output", str(output))
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert texts.read_text(encoding="utf-8") == "Alice met Bob\n"
    assert records.read_text(encoding="utf-8") == '{"text": "Alice met Bob"}\n'


def test_a_full_disk_is_one_line_and_leaves_no_temp_file(tmp_path: Path, model_dir: Path) -> None:
    """A file-size limit stands in for a full disk: the write fails with an OS error half-way."""
    import resource

    texts = tmp_path / "in.txt"
    texts.write_text("Alice met Bob in Paris and Berlin .\n" * 400, encoding="utf-8")
    out = tmp_path / "out.jsonl"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = run_cli("predict", str(model_dir), str(texts), "--output", str(out), preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "too large" in last.lower(), proc.stderr[-800:]
    assert not out.exists()
    assert _hidden_leftovers(tmp_path, "out.jsonl") == []


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path, tiny_encoder: Path) -> None:
    out = tmp_path / "model"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from nerforge.locking import exclusive\n"
         f"with exclusive({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        train = _conll(tmp_path / "train.conll", 4)
        proc = run_cli("train", "--train", str(train), "--output", str(out), "--model", str(tiny_encoder),
                       "--no-tracking")  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert f"process {holder.pid}" in proc.stderr and "in use" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "model.work").exists()  # the refused run touched nothing


@pytest.fixture
def mount_tmpfs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Mount a small tmpfs (read-only or not) under tmp_path; skips where mounting is not allowed (not root)."""
    mounted: list[Path] = []

    def mount(name: str, *, size: str = "1m", read_only: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        opts = f"size={size}" + (",ro" if read_only else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.decode(errors='replace').strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_read_only_and_full_file_systems_are_refused_before_work(
    tmp_path: Path,
    model_dir: Path,
    tiny_encoder: Path,
    mount_tmpfs,  # type: ignore[no-untyped-def]
) -> None:
    texts = tmp_path / "in.txt"
    texts.write_text("Alice met Bob in Paris .\n", encoding="utf-8")
    read_only = mount_tmpfs("ro", read_only=True)
    proc = run_cli("predict", str(model_dir), str(texts), "--output", str(read_only / "out.jsonl"))
    assert proc.returncode == 2 and "read-only" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr

    tiny = mount_tmpfs("tiny", size="64k")  # far less than a checkpoint of even the tiny encoder
    train = _conll(tmp_path / "train.conll", 4)
    proc = run_cli("train", "--train", str(train), "--output", str(tiny / "model"), "--model", str(tiny_encoder),
                   "--no-tracking")  # fmt: skip
    assert proc.returncode == 2 and "not enough free space" in proc.stderr, proc.stderr
    assert list(tiny.iterdir()) == []

    # an input larger than the free space: refused before any tagging
    texts.write_text("Alice met Bob in Paris and Berlin .\n" * 3000, encoding="utf-8")
    proc = run_cli("predict", str(model_dir), str(texts), "--output", str(tiny / "out.jsonl"))
    assert proc.returncode == 2 and "not enough free space for the predictions" in proc.stderr, proc.stderr
    assert list(tiny.iterdir()) == []
    # what no check can foresee: the predictions (each text again, with its entities) outgrow the disk
    texts.write_text("Alice met Bob in Paris and Berlin .\n" * 1000, encoding="utf-8")
    proc = run_cli("predict", str(model_dir), str(texts), "--output", str(tiny / "out.jsonl"))
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No space left on device" in last and "Traceback" not in proc.stderr
    assert list(tiny.iterdir()) == []  # neither the output nor its temporary file


LOWEST_TYPER = (
    "typer==0.24.1"  # the lower bound in pyproject.toml: the last Typer that raises the click package's errors
)


def test_usage_mistakes_with_the_lowest_pinned_typer(tmp_path: Path) -> None:
    """The pinned range is tested at both ends: the installed Typer above, the lowest one (with click) here."""
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), LOWEST_TYPER],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if pip.returncode != 0:
        pytest.skip(f"cannot install {LOWEST_TYPER} (no package registry?): {pip.stderr.strip()[-300:]}")
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    script = (
        "import sys, typer; assert typer.__version__ == sys.argv[1]; from nerforge.cli import _entry; "
        "sys.argv = ['nerforge', *sys.argv[2:]]; _entry()"
    )
    for args in (["trian"], ["train", "--epochs", "abc"], ["evaluate"], ["train", "--bogus"]):
        proc = subprocess.run([sys.executable, "-c", script, LOWEST_TYPER.split("==")[1], *args],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert proc.returncode == 2, (args, proc.stderr[-1500:])
        assert "Traceback" not in proc.stderr
        assert sum(ln.startswith("Error") for ln in proc.stderr.splitlines()) == 1, proc.stderr


def test_convert_and_evaluate_check_their_outputs_first(tmp_path: Path, model_dir: Path) -> None:
    data = _conll(tmp_path / "data.conll", 2)
    (tmp_path / "out.jsonl").mkdir()
    proc = run_cli("convert", str(data), str(tmp_path / "out.jsonl"))
    assert proc.returncode == 2 and "is a folder" in proc.stderr, proc.stderr
    proc = run_cli("convert", str(data), str(data))
    assert proc.returncode == 2 and "is the input file" in proc.stderr, proc.stderr
    assert data.read_text(encoding="utf-8").startswith("Alice0")

    report = tmp_path / "report"
    report.write_text("mine", encoding="utf-8")
    proc = run_cli("evaluate", str(model_dir), str(data), "--output", str(report))
    assert proc.returncode == 2 and "not a folder" in proc.stderr, proc.stderr
    assert report.read_text(encoding="utf-8") == "mine"
