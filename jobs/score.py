"""spark-submit entry: ``spark-submit jobs/score.py --model OUTPUT_ROOT --input NEW_LOG --output OUT [...]``."""

import sys

from segmentation.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
