"""A driver process whose default file system is a ``viewfs://`` mount table over a local folder, as a YARN
cluster's is HDFS: ``segmentation run``, ``score`` and ``report`` through the command line, all in this session.

    python tests/drivers/viewfs.py MOUNTED_FOLDER CLUSTER_FOLDER INPUT

``/CLUSTER_FOLDER`` on the cluster's file system is ``MOUNTED_FOLDER`` on the local disk. Prints the three
exit codes as one JSON list on the last line of standard output.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession

from segmentation import cli


def main(mounted: str, cluster_folder: str, log: str) -> list[int]:
    (
        SparkSession.builder.master("local[2]")
        .config("spark.hadoop.fs.defaultFS", "viewfs://cluster")
        .config(f"spark.hadoop.fs.viewfs.mounttable.cluster.link./{cluster_folder}", f"file://{mounted}")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    root, scored = f"/{cluster_folder}/out", f"/{cluster_folder}/scored"
    codes = [cli.main(["run", "--input", f"file://{log}", "--output", root, "--set", "model.k=3", "-q"])]
    codes.append(cli.main(["score", "--model", root, "--input", f"file://{log}", "--output", scored, "-q"]))
    codes.append(cli.main(["report", root, "--set", "spark.app_name=report", "-q"]))  # through the session
    return codes


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
