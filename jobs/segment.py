"""spark-submit entry: ``spark-submit jobs/segment.py [--config FILE] --input PATH --output PATH [--set K=V ...]``."""

import sys

from segmentation.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
