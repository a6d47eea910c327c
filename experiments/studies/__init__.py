"""One-off studies built on the pipeline, kept apart from it.

Each answers one question with its own setting, grid and summary, and has a benchmark script in
``bench/`` and a slow test that prints its figures:

- :mod:`~driftrec.experiments.studies.cold_start`: where the language-model item tower matters
  (a growing catalog, frozen policies; ``bench/bench_cold_start.py``);
- :mod:`~driftrec.experiments.studies.compression`: the compressed attention policy
  (``driftrec compress``, ``driftrec evaluate --policy``; ``bench/bench_compress.py``);
- :mod:`~driftrec.experiments.studies.lora_study`: LoRA adapters of the text encoder on a
  misleading catalog (``bench/bench_lora.py``);
- :mod:`~driftrec.experiments.studies.calibration`: the MovieLens-calibrated world against
  held-out ratings (``bench/bench_movielens.py``).

Their old import paths (``driftrec.experiments.cold_start``, ...) keep working: they name the same
module objects (see :mod:`driftrec.experiments`).
"""
