"""`python -m app`: the same as the `sos-router` console script."""

import sys

from app.cli import main

sys.exit(main())
