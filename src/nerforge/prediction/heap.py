"""Keep Python's cycle collector off the objects a prediction process loads once and keeps.

After ``import torch, transformers`` and a model load, a process holds some 400,000 long-lived Python objects. Every
full (generation 2) collection walks all of them: measured here at about 0.2 s, which on a 500-sentence batch is a
third of a small model's own time, at unpredictable moments. :func:`settle_loaded_objects` collects once and then
``gc.freeze()``-s what is left, so later collections only walk the objects created since (the technique CPython
documents for pre-fork servers, also used by Instagram's Django servers).

It is called where one model is loaded and then kept for a whole file or a process's life (``nerforge predict``,
``evaluate``, ``suggest``, ``bench``, ``serve``, Ray workers), not by :meth:`Tagger.load` itself: a library user who loads and drops many models in a loop would keep
any reference cycles of the dropped ones alive.
"""

from __future__ import annotations

import gc


def settle_loaded_objects() -> int:
    """Collect garbage, then move every surviving object to the permanent generation; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
