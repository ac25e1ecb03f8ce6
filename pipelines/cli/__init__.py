"""The ``effectlake`` command line and the demo, apart from the Dagster definitions.

* ``main.py`` — argument parsing and dispatch (the console script).
* ``demo.py`` — ``effectlake demo``: API, Dagster and dashboard processes, real sample videos.
* ``summary.py`` — the demo's plain-text summary of a video.
* ``run_jobs.py`` — ``effectlake economics`` / ``benchmark``: a job on the current instance.
* ``simulate.py`` — ``effectlake simulate``: simulated history into the lake.
* ``manifest.py`` — ``effectlake manifest``: the current routing manifest.
"""

# ``pipelines.cli:main`` was the console script's entry point before the CLI became a
# package; an environment installed before the move keeps a working ``effectlake``.
from pipelines.cli.main import main

__all__ = ["main"]
