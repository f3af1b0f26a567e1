"""Allow ``python -m covidlib``."""

import sys

from covidlib.cli import main

sys.exit(main())
