"""Experiments: running agents on drift scenarios, recording, analysing and plotting them.

The pipeline, compute -> save -> plot, one module per step:

==================  ==========================================================================
``config``          :class:`~driftrec.experiments.config.ExperimentConfig`: the grid, validated
``runner``          runs a grid (resumable, parallel), one run directory per run
``recorder``        per-step measurement into the windows of ``metrics.csv``
``guard``           run fingerprints, locks, workers that die with their parent
``io``              atomic writes
``results``         an ``EvalResult`` computed in Python as a run directory
``analysis``        loading runs; curves, recovery, summary tables
``returns``         return per user, retention, the return ratio
``plots``           the figures
``report``          figures + ``report.md``
``evaluate``        a checkpoint or any agent, frozen, on new users
``export``          Minari datasets
``finetune``        LoRA adapters of the text encoder from clicks
``ray_backend``     the grid as Ray tasks
``cli``             the ``driftrec`` command; ``configs/`` the named experiments (the demo)
==================  ==========================================================================

One-off studies built on it live in :mod:`driftrec.experiments.studies` (cold start,
compression, the LoRA study, the MovieLens calibration). Their old paths
(``driftrec.experiments.cold_start`` and so on) are aliases of the same modules.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

_MOVED = {
    f"{__name__}.{name}": f"{__name__}.studies.{name}"
    for name in ("calibration", "cold_start", "compression", "lora_study")
}
"""Old module path -> where the study lives now."""


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old study path as the very module object at its new path."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> ModuleType:
        return importlib.import_module(_MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:  # already executed at its new path
        return None


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.append(_Alias())
