"""nerforge tune: searching training settings within a time budget (see :mod:`nerforge.tuning.study`)."""
