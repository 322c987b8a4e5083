"""Names in the catalog and SQL text: quoted table and database names, one run's partition as a condition or a
spec, and the staging and work tables' names (which carry their creation time, so a killed run's are found)."""

from __future__ import annotations

import datetime as dt
import re

from segmentation.config import CatalogOutputConfig
from segmentation.errors import ConfigError
from segmentation.publish.publisher import STALE_SECONDS

RUNS = "runs"
AS_OF_DATE = "as_of_date"
RUN_ID = "run_id"
PARTITION_COLUMNS = (AS_OF_DATE, RUN_ID)
STAGE_PREFIX = "_segmentation_stage_"
WORK_PREFIX = "_segmentation_work_"
STAMP_FORMAT = "%Y%m%d%H%M%S"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")  # attempt and work ids: no '_', so a table name splits unambiguously
HELPER_TABLE = re.compile(r"^_segmentation_(stage|work)_(\d{14})_([a-z0-9]+)_(\w+)$", re.IGNORECASE)


def quote_identifier(name: str) -> str:
    """``name`` in backticks (a backtick inside doubled)."""
    return "`" + name.replace("`", "``") + "`"


def database_name(cfg: CatalogOutputConfig) -> str:
    """```catalog`.`database``` or ```database```; ConfigError when no database is configured."""
    if cfg.database is None:
        raise ConfigError("output.catalog.database: not set; name the database (schema) to publish tables in")
    parts = (cfg.catalog_name, cfg.database) if cfg.catalog_name else (cfg.database,)
    return ".".join(quote_identifier(part) for part in parts)


def table_name(cfg: CatalogOutputConfig, table: str) -> str:
    """```catalog`.`database`.`table``` (backtick-quoted), or ```database`.`table``` without a catalog."""
    if not IDENTIFIER.match(table):
        raise ValueError(f"not a table name: {table!r}")
    return f"{database_name(cfg)}.{quote_identifier(table)}"


def sql_string(value: str) -> str:
    """``value`` as a single-quoted Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def partition_condition(as_of: dt.date, run_id: str) -> str:
    """``as_of_date = DATE'…' AND run_id = '…'``: the rows of one run."""
    return f"{AS_OF_DATE} = DATE{sql_string(as_of.isoformat())} AND {RUN_ID} = {sql_string(run_id)}"


def partition_spec(as_of: dt.date, run_id: str) -> str:
    """``(as_of_date = DATE'…', run_id = '…')``: one run's partition, for INSERT and ALTER TABLE."""
    return f"({AS_OF_DATE} = DATE{sql_string(as_of.isoformat())}, {RUN_ID} = {sql_string(run_id)})"


def helper_table(prefix: str, when: dt.datetime, *, owner: str, name: str) -> str:
    """``<prefix><yyyymmddHHMMSS>_<owner>_<name>``: a staging or work table, named with its UTC creation time."""
    if not _ID.match(owner) or not IDENTIFIER.match(name):
        raise ValueError(f"not an id and table name: {owner!r}, {name!r}")
    return f"{prefix}{when.astimezone(dt.UTC).strftime(STAMP_FORMAT)}_{owner}_{name}"


def stale(table: str, now: dt.datetime, max_age_seconds: float = STALE_SECONDS) -> bool:
    """True for a staging or work table whose name says it was made more than ``max_age_seconds`` before ``now``."""
    match = HELPER_TABLE.match(table)
    if not match:
        return False
    made = dt.datetime.strptime(match.group(2), STAMP_FORMAT).replace(tzinfo=dt.UTC)
    return (now - made).total_seconds() > max_age_seconds
