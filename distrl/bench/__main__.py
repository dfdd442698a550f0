"""Entry point for ``python -m distrl.bench``; ``main`` is ``distrl.bench.main``."""

import sys

from distrl.bench import main

if __name__ == "__main__":
    sys.exit(main())
