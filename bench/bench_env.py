#!/usr/bin/env python
"""Simulator throughput benchmark (the same as ``driftrec bench``; see driftrec.experiments.bench).

Run as a script, ``--blas-threads N`` takes effect because it is applied before numpy loads.
"""

import os
import sys

if __name__ == "__main__":
    for i, arg in enumerate(sys.argv):
        value = None
        if arg == "--blas-threads" and i + 1 < len(sys.argv):
            value = sys.argv[i + 1]
        elif arg.startswith("--blas-threads="):
            value = arg.split("=", 1)[1]
        if value is not None:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = value

    from driftrec.experiments.bench import main

    sys.exit(main())
