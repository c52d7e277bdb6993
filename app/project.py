"""``python -m app.project IMAGE --out DIR``: the documented command; the code is ``app.projection.cli``."""
import sys

from .projection.cli import main

if __name__ == "__main__":
    sys.exit(main())
