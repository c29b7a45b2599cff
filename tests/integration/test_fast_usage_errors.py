"""A usage error (a missing file, a folder that is not a model, a refused output) is reported before torch,
transformers, ONNX Runtime or matplotlib is imported: those take seconds to load, the error a fraction of one.

Each case runs in a fresh interpreter, which then reports which heavy libraries it had loaded. No timing: what is
checked is that nothing heavy was needed to find the mistake.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "onnxruntime", "matplotlib")
_PROBE = (
    "import json, sys\n"
    "from nerforge.cli import main\n"
    "code = main(json.loads(sys.argv[1]))\n"
    f"print(json.dumps({{'code': code, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
)

CASES = {
    "train-missing-data": ["train", "--train", "{tmp}/missing.conll", "--output", "{tmp}/out"],
    "train-output-is-a-file": ["train", "--train", "{data}", "--output", "{data}"],
    "train-output-someone-elses-folder": ["train", "--train", "{data}", "--output", "{tmp}/theirs"],
    "distill-no-teacher": ["distill", "{tmp}/nomodel", "--train", "{data}", "--layers", "1", "-o", "{tmp}/s"],
    "predict-no-model": ["predict", "{tmp}/nomodel", "{data}", "--output", "{tmp}/o.jsonl"],
    "predict-not-a-model": ["predict", "{tmp}", "{data}", "--output", "{tmp}/o.jsonl"],
    "evaluate-no-model": ["evaluate", "{tmp}/nomodel", "{data}"],
    "export-no-model": ["export", "{tmp}/nomodel", "--onnx", "--output", "{tmp}/e"],
    "serve-no-model": ["serve", "{tmp}/nomodel"],
    "bench-no-model": ["bench", "{tmp}/nomodel", "{data}"],
    "suggest-no-model": ["suggest", "{tmp}/nomodel", "{data}", "--count", "2", "--output", "{tmp}/s.jsonl"],
    "convert-missing": ["convert", "{tmp}/missing.conll", "{tmp}/o.jsonl"],
    "annotate-missing-terms": ["annotate", "--terms", "{tmp}/missing.csv", "{data}", "-o", "{tmp}/a.jsonl"],
    "inspect-missing": ["inspect", "{tmp}/missing.conll"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_usage_error_before_heavy_imports(case: str, tmp_path: Path) -> None:
    data = tmp_path / "train.conll"
    data.write_text("We\tO\nuse\tO\nGo\tB-TECH\n", encoding="utf-8")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "thesis.tex").write_text("mine", encoding="utf-8")
    args = [a.format(tmp=tmp_path, data=data) for a in CASES[case]]
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert report["loaded"] == [], f"{case}: loaded {report['loaded']} before the error: {proc.stderr.strip()}"
