"""What a study leaves to read: the leaderboard (Markdown and CSV) and the plots (PNG)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from nerforge.io_utils import atomic_write_text

LEADERBOARD_FIELDS = ("trial", "state", "dev_f1", "seconds", "stopped")


def leaderboard_rows(trials: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Every trial as a row (best dev F1 first, then the others by number), and the column names."""
    settings = sorted({k for t in trials for k in t.user_attrs.get("values", {})})
    rows = []
    for t in trials:
        row = {"trial": t.number, "state": t.state.name.lower(),
               "dev_f1": "" if t.value is None else round(t.value, 4),
               "seconds": t.user_attrs.get("seconds", ""), "stopped": t.user_attrs.get("stopped", "")}  # fmt: skip
        row.update({k: t.user_attrs.get("values", {}).get(k, "") for k in settings})
        rows.append(row)
    rows.sort(key=lambda r: (r["dev_f1"] == "", -(r["dev_f1"] or 0), r["trial"]))
    return [*LEADERBOARD_FIELDS, *settings], rows


def write_leaderboard(trials: list[Any], output: Path) -> None:
    names, rows = leaderboard_rows(trials)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(output / "leaderboard.csv", buffer.getvalue())

    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(n, r[n]) for n in names) + " |" for r in rows]
    text = "# nerforge tune: leaderboard\n\nDev F1 of every trial (the test split is not read during the search).\n\n"
    atomic_write_text(output / "leaderboard.md", text + "\n".join(lines) + "\n")


def _cell(name: str, value: Any) -> str:
    """A leaderboard cell in Markdown: a drawn setting's float to 3 significant digits (``0.0454``, not
    ``0.04542191680814189``; the CSV keeps every digit), the trial's own columns as they are."""
    if name not in LEADERBOARD_FIELDS and isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def write_plots(study: Any, output: Path) -> None:
    """History (best dev F1 against time), parameter importance, F1 by head and learning rate, as PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return
    import optuna  # a study exists: optuna is installed

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.datetime_complete]
    if not done:
        return
    folder = output / "plots"
    folder.mkdir(exist_ok=True)
    start = min(t.datetime_start for t in study.trials if t.datetime_start)
    ordered = sorted(done, key=lambda t: t.datetime_complete)
    minutes = [(t.datetime_complete - start).total_seconds() / 60 for t in ordered]
    best = [max(t.value for t in ordered[: i + 1]) for i in range(len(ordered))]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.scatter(minutes, [t.value for t in ordered], s=18, label="trial")
    ax.step(minutes, best, where="post", color="C1", label="best so far")
    ax.set_xlabel("minutes since the study started")
    ax.set_ylabel("dev F1")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "history.png", dpi=110)
    plt.close(fig)
    if len(done) >= 3:
        try:
            importance = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError, ImportError):
            importance = {}
        if importance:
            fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(importance)))
            names = list(importance)[::-1]
            ax.barh(names, [importance[n] for n in names])
            ax.set_xlabel("importance for dev F1 (fANOVA)")
            fig.tight_layout()
            fig.savefig(folder / "importance.png", dpi=110)
            plt.close(fig)
    rates = [(t.user_attrs["values"].get("learning_rate"), t.user_attrs["values"].get("head"), t.value) for t in done]
    if any(r is not None for r, _, _ in rates):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for k, head in enumerate(sorted({str(h) for _, h, _ in rates})):
            pts = [(r, v) for r, h, v in rates if str(h) == head and r is not None]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22, label=head, color=f"C{k}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("dev F1")
        ax.legend(title="head", loc="lower right")
        fig.tight_layout()
        fig.savefig(folder / "f1_by_head_and_lr.png", dpi=110)
        plt.close(fig)
