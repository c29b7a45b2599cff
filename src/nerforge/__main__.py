"""``python -m nerforge``: the ``nerforge`` command (same as ``python -m nerforge.cli``)."""

from nerforge.cli import _entry

if __name__ == "__main__":
    _entry()
