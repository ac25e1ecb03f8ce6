"""``python -m pipelines.cli``: the ``effectlake`` command without its console script."""

import sys

from pipelines.cli.main import main

sys.exit(main())
