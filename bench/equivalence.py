"""Run the job on the inputs a refactoring must not change, into one folder per input, for ``compare_runs.py``.

    python bench/equivalence.py OUT_FOLDER [--only demo,online_retail,cdnow,catalog]

Inputs: the demo log (``segmentation generate``, as ``make run``), the UCI Online Retail log from
``../shared/data`` (skipped when it is not there), the CDNOW-shaped example (``conf/examples/cdnow.yaml`` on a
generated CDNOW-shaped log) and a catalog run (the demo log into catalog tables of a Hive metastore in a
temporary folder, each table read back and written as Parquet, ``manifest.json`` from its ``runs`` row and
``report.md`` from its ``report`` table, so the same comparison applies). Each run goes through the command line
only, so the script runs against any version of the package. Run it before and after a change, then::

    python bench/compare_runs.py OUT_BEFORE/demo/<committed attempt> OUT_AFTER/demo/<committed attempt>

or ``python bench/equivalence.py --compare OUT_BEFORE OUT_AFTER`` for every input at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGMENTATION_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO / "bench"))

from compare_runs import differences  # noqa: E402


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "segmentation.cli", *args], check=True, cwd=REPO)


def _committed(root: Path) -> Path:
    latest = (root / "latest").read_text().strip()
    commits = sorted((root / latest / "_commits").glob("*.json"))
    attempt = json.loads(commits[-1].read_text())["attempt_id"]
    return root / latest / f"attempt={attempt}"


def demo(out: Path, data: Path) -> Path:
    log = data / "transactions.csv.gz"
    if not log.exists():
        _cli("generate", "--output", str(log))
    _cli("run", "--config", "conf/local.yaml", "--input", str(log), "--output", str(out / "demo"), "-q")
    return _committed(out / "demo")


def online_retail(out: Path, data: Path) -> Path | None:
    log = SHARED / "online_retail.csv.gz"
    if not log.exists():
        return None
    _cli("run", "--input", str(log), "--output", str(out / "online_retail"), "-q")
    return _committed(out / "online_retail")


def cdnow(out: Path, data: Path) -> Path:
    log = data / "cdnow.csv"
    if not log.exists():
        _cli("generate", "--shape", "cdnow", "--output", str(log))
    _cli("run", "--config", "conf/examples/cdnow.yaml", "--input", str(log), "--output", str(out / "cdnow"), "-q")
    return _committed(out / "cdnow")


CATALOG_DRIVER = """
import json, sys
from pyspark.sql import SparkSession
from segmentation import cli
folder, log, out = sys.argv[1:4]
spark = (SparkSession.builder.master("local[2]").enableHiveSupport()
    .config("spark.sql.warehouse.dir", f"{folder}/warehouse")
    .config("spark.hadoop.javax.jdo.option.ConnectionURL", f"jdbc:derby:;databaseName={folder}/metastore;create=true")
    .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={folder}")
    .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
    .config("spark.sql.session.timeZone", "UTC").getOrCreate())
code = cli.main(["run", "--config", "conf/local.yaml", "--input", log, "--output", f"{folder}/files",
                 "--set", "output.catalog.database=seg", "-q"])
assert code == 0, code
runs = spark.table("seg.runs").collect()
assert len(runs) == 1
manifest = json.loads(runs[0]["manifest_json"])
names = [r["tableName"] for r in spark.sql("SHOW TABLES IN seg").collect() if not r["isTemporary"]]
for name in names:
    if name in ("runs", "report"):
        continue
    spark.table(f"seg.{name}").drop("as_of_date", "run_id").write.parquet(f"{out}/{name}")
docs = {r["format"]: r["content"] for r in spark.table("seg.report").collect()}
open(f"{out}/report.md", "w").write(docs["markdown"])
open(f"{out}/manifest.json", "w").write(json.dumps(manifest, indent=2))
"""


def catalog(out: Path, data: Path) -> Path:
    log = data / "transactions.csv.gz"
    if not log.exists():
        _cli("generate", "--output", str(log))
    target = out / "catalog"
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-c", CATALOG_DRIVER, folder, str(log), str(target)], check=True, cwd=REPO)
    return target


RUNS = {"demo": demo, "online_retail": online_retail, "cdnow": cdnow, "catalog": catalog}


def compare(before: Path, after: Path) -> int:
    failed = 0
    for name in RUNS:
        if not (before / f"{name}.path").exists() or not (after / f"{name}.path").exists():
            print(f"{name}: not in both")
            continue
        a, b = (Path((root / f"{name}.path").read_text().strip()) for root in (before, after))
        found = differences(a, b)
        print(f"{name}: {'identical' if not found else 'DIFFERENT'}")
        for line in found:
            print(f"  {line}")
        failed += bool(found)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("after", type=Path, nargs="?", help="with --compare: the second folder")
    parser.add_argument("--only", default=",".join(RUNS))
    parser.add_argument("--compare", action="store_true", help="compare OUT with AFTER instead of running")
    parser.add_argument(
        "--data",
        type=Path,
        help="the generated inputs (default OUT/data); give both runs the same, since the "
        "quarantine names each line's source file",
    )
    args = parser.parse_args()
    if args.compare:
        return compare(args.out.resolve(), args.after.resolve())
    out = args.out.resolve()
    data = (args.data or out / "data").resolve()
    data.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(","):
        folder = RUNS[name](out, data)
        if folder is not None:
            (out / f"{name}.path").write_text(str(folder))
            print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
