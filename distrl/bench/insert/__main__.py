"""Entry point for ``python -m distrl.bench.insert`` (the same as ``python -m distrl.bench insert``)."""

import sys

from distrl.bench.insert.cli import main

if __name__ == "__main__":
    sys.exit(main())
