"""``python -m nerforge.cli``: the ``nerforge`` command, for launchers that start a module
(``torchrun -m nerforge.cli train ...``, ``accelerate launch -m nerforge.cli train ...``)."""

from nerforge.cli import _entry

if __name__ == "__main__":
    _entry()
