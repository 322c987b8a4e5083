"""``python -m segmentation.cli``: the ``segmentation`` program."""

import sys

from segmentation.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
