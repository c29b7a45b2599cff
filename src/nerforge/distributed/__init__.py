"""Beyond one machine: batch prediction over large corpora on Ray (:mod:`nerforge.distributed.ray_predict`).

``io`` plans and reads the input in parts, ``parts`` writes resumable part files and merges them, ``ray_predict``
runs a pool of tagger actors over the parts. Ray is optional (``pip install 'nerforge[ray]'``) and imported only
when a run starts. Multi-process *training* lives in :mod:`nerforge.training.distributed`.
"""

from nerforge.distributed.ray_predict import RayOptions, RaySummary, predict_on_ray

__all__ = ["RayOptions", "RaySummary", "predict_on_ray"]
