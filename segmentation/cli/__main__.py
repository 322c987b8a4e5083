"""``python -m segmentation.cli``: the ``segmentation`` program."""

import sys

from segmentation.cli.main import main

sys.exit(main())
