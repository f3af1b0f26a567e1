"""Allow ``python -m covidlib``.

The guard keeps importing this module (as doctest collection does) from running the CLI.
"""

import sys

from covidlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
