"""Pseudonymising customer ids: HMAC-SHA256 with a key from the environment or a Databricks secret.

The key is read at run time and held in memory only: it is not in the config, the manifest, the outputs, the
logs or the text of the query plan (``explain``). Spark SQL has no built-in HMAC, and writing one from ``sha2``
would put key-derived bytes in the plan as literals, so the hashing runs in a vectorised Python function whose
closure holds the key. That function is pickled into the plan and shipped to every executor (and, over Spark
Connect, to the server) like any Python UDF: the key does leave the driver, in memory of the processes that
run the job, and is as safe as the cluster's own channels and memory are.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from segmentation.config import PrivacyConfig
from segmentation.errors import ConfigError

CUSTOMER_ID = "customer_id"
RAW_LINE = "raw_line"
RAW_LINE_HMAC = "raw_line_hmac"
MIN_KEY_LENGTH = 16


def load_key(cfg: PrivacyConfig, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The HMAC key when ``privacy.pseudonymize_ids`` is on (None when off); never logs or returns it as text."""
    if not cfg.pseudonymize_ids:
        return None
    if cfg.secret_scope is not None and cfg.secret_key is not None:
        value = _databricks_secret(cfg.secret_scope, cfg.secret_key)
        where = f"privacy.secret_scope: the secret {cfg.secret_key!r} in scope {cfg.secret_scope!r}"
    else:
        value = (os.environ if environ is None else environ).get(cfg.key_env, "")
        where = f"privacy.key_env: the environment variable {cfg.key_env}"
    if not value:
        raise ConfigError(f"{where} is not set or empty, and privacy.pseudonymize_ids is true")
    if len(value) < MIN_KEY_LENGTH:
        raise ConfigError(f"{where} holds fewer than {MIN_KEY_LENGTH} characters; use a longer random key")
    return value.encode("utf-8")


def _databricks_secret(scope: str, key: str) -> str:
    """A secret from Databricks' ``dbutils.secrets`` (the runtime's, or the SDK's over Databricks Connect)."""
    try:
        from databricks.sdk.runtime import dbutils
    except ImportError:
        raise ConfigError(
            "privacy.secret_scope: Databricks secrets are not available here (no databricks.sdk.runtime); "
            "outside Databricks, set privacy.key_env instead"
        ) from None
    return str(dbutils.secrets.get(scope=scope, key=key))


def pseudonym(key: bytes) -> object:
    """A vectorised Spark function: text -> hex HMAC-SHA256 of its UTF-8 bytes under ``key`` (null stays null)."""

    def digest(values: pd.Series) -> pd.Series:
        return values.map(
            lambda v: None if v is None else hmac.new(key, str(v).encode("utf-8"), hashlib.sha256).hexdigest()
        )

    return pandas_udf(digest, "string")  # type: ignore[call-overload]


def protect(frame: DataFrame, key: bytes | None) -> DataFrame:
    """``customer_id`` replaced by its pseudonym and ``raw_line`` by ``raw_line_hmac``; unchanged without a key."""
    if key is None:
        return frame
    hashed = pseudonym(key)
    out = frame
    if CUSTOMER_ID in frame.columns:
        out = out.withColumn(CUSTOMER_ID, _call(hashed, F.col(CUSTOMER_ID)))
    if RAW_LINE in frame.columns:
        out = out.withColumn(RAW_LINE, _call(hashed, F.col(RAW_LINE))).withColumnRenamed(RAW_LINE, RAW_LINE_HMAC)
    return out


def _call(function: object, column: Column) -> Column:
    return function(column.cast("string"))  # type: ignore[operator]
