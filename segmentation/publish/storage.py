"""The output root's file system: the one module that makes folders, lists, deletes and reads or writes small
files (manifest, commit markers, ``latest``, the report) there. Tables and models are written by Spark itself.

A path is resolved exactly as Spark resolves it, and the operations go through the file system Spark writes
through:

- in a classic session, Hadoop's ``FileSystem`` of the path (through the JVM: this module is the one place
  that touches it), so a path without a scheme is on the cluster's default file system (``fs.defaultFS``:
  HDFS on a YARN cluster, a ``viewfs://`` mount table, ...) and ``hdfs:``, ``s3a:``, ``gs:``, ``abfss:``,
  ``dbfs:`` work wherever the cluster has them configured; a path on the local disk uses Python's own calls;
- over Spark Connect there is no JVM on the client: a path is usable when the client really sees what the
  server sees at it (a probe file the client writes is read back through Spark), as on Databricks, where
  ``/Volumes/...`` is mounted on the driver; otherwise the root is *unreachable* (catalog tables still
  work, since Spark alone writes them).

No operation here relies on an atomic rename of a folder: object stores have none. ``create_new`` (create a
file only if it does not exist) is the one primitive the publish protocol needs: atomic on a local disk
(``link``), on HDFS and on GCS and ABFS (conditional create); on S3A it is a check then a write unless the
bucket has conditional writes (``fs.s3a.create.conditional.enabled``, Hadoop 3.4.2+).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from segmentation.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One item of a folder listing."""

    name: str
    is_dir: bool
    modified: float  # seconds since the epoch; 0 where the file system keeps none (object store "folders")


class Storage:
    """Operations on one file system, with paths as Spark should be given them (``join`` builds them)."""

    reachable = True

    def __init__(self, root: str) -> None:
        self.root = root

    def join(self, base: str, *parts: str) -> str:
        """``base/part/...`` (forward slashes, whatever the scheme)."""
        return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def mkdirs(self, path: str) -> None:
        raise NotImplementedError

    def list(self, path: str) -> list[Entry]:
        """The folder's entries (none if it does not exist)."""
        raise NotImplementedError

    def delete(self, path: str) -> None:
        """Remove a file or a whole folder; nothing happens if it is not there."""
        raise NotImplementedError

    def remove_if_empty(self, path: str) -> None:
        """Remove an empty folder; nothing happens if it holds anything or is not there."""
        raise NotImplementedError

    def read_bytes(self, path: str) -> bytes:
        """A small file's content; ``FileNotFoundError`` if it is not there."""
        raise NotImplementedError

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a small file whole, replacing any file there (readers that race it must tolerate its absence)."""
        raise NotImplementedError

    def create_new(self, path: str, data: bytes) -> bool:
        """Create ``path`` holding ``data`` only if nothing is there: True if this call created it."""
        raise NotImplementedError

    def local_folder(self, path: str) -> str | None:
        """``path`` as a folder on this machine's disk, if it is one that exists (for tools that need one)."""
        return None

    def read_table(self, spark: SparkSession | None, path: str) -> pd.DataFrame:
        """A small Parquet table (a run's profiles or report sample) as pandas."""
        raise NotImplementedError

    # text and JSON helpers, the same on every file system

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_text(path))

    def write_json(self, path: str, value: Any) -> None:
        self.write_text(path, json.dumps(value, indent=2, default=str))


class LocalStorage(Storage):
    """The local disk (or a disk mounted on the driver, such as ``/Volumes`` on Databricks), with Python's calls.

    ``root`` is what Spark is given: a plain path where the default file system is the local one, else a
    ``file:`` URI.
    """

    def __init__(self, root: str) -> None:
        super().__init__(root)

    @staticmethod
    def local(path: str) -> str:
        return urlparse(path).path if path.startswith("file:") else path

    def exists(self, path: str) -> bool:
        return os.path.exists(self.local(path))

    def local_folder(self, path: str) -> str | None:
        return self.local(path) if os.path.isdir(self.local(path)) else None

    def mkdirs(self, path: str) -> None:
        os.makedirs(self.local(path), exist_ok=True)

    def list(self, path: str) -> list[Entry]:
        folder = self.local(path)
        entries = []
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        for name in names:
            full = os.path.join(folder, name)
            try:
                entries.append(Entry(name, os.path.isdir(full), os.path.getmtime(full)))
            except FileNotFoundError:
                continue  # removed while listing
        return entries

    def delete(self, path: str) -> None:
        local = self.local(path)
        if os.path.isdir(local) and not os.path.islink(local):
            shutil.rmtree(local, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(local)

    def remove_if_empty(self, path: str) -> None:
        with contextlib.suppress(OSError):
            os.rmdir(self.local(path))

    def read_bytes(self, path: str) -> bytes:
        with open(self.local(path), "rb") as handle:
            return handle.read()

    def write_bytes(self, path: str, data: bytes) -> None:
        tmp = self._written_aside(path, data)
        os.replace(tmp, self.local(path))

    def create_new(self, path: str, data: bytes) -> bool:
        tmp = self._written_aside(path, data)
        try:
            os.link(tmp, self.local(path))  # atomic, and fails if the name exists: the file appears whole or not
            return True
        except FileExistsError:
            return False
        finally:
            os.remove(tmp)

    def _written_aside(self, path: str, data: bytes) -> str:
        """``data`` written and flushed to disk under a temporary name beside ``path``."""
        tmp = f"{self.local(path)}.tmp-{uuid.uuid4().hex[:8]}"
        os.makedirs(os.path.dirname(tmp), exist_ok=True)  # as Hadoop's create does
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp

    def read_table(self, spark: SparkSession | None, path: str) -> pd.DataFrame:
        return pd.read_parquet(self.local(path))


class HadoopStorage(Storage):
    """Any Hadoop file system (HDFS, viewfs, S3A, GCS, ABFS, ...) through the classic session's JVM."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        super().__init__(root)
        self._spark = spark
        self._jvm: Any = spark._jvm
        self._conf: Any = spark._jsparkSession.sessionState().newHadoopConf()

    def _path(self, path: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: Any) -> Any:
        return path.getFileSystem(self._conf)

    def qualified(self, path: str) -> str:
        hadoop_path = self._path(path)
        return str(self._fs(hadoop_path).makeQualified(hadoop_path).toString())

    def default_fs(self) -> str:
        return str(self._conf.get("fs.defaultFS", "file:///"))

    def exists(self, path: str) -> bool:
        hadoop_path = self._path(path)
        return bool(self._fs(hadoop_path).exists(hadoop_path))

    def mkdirs(self, path: str) -> None:
        hadoop_path = self._path(path)
        self._fs(hadoop_path).mkdirs(hadoop_path)

    def list(self, path: str) -> list[Entry]:
        hadoop_path = self._path(path)
        fs = self._fs(hadoop_path)
        try:
            statuses = fs.listStatus(hadoop_path)
        except Exception as exc:  # Py4J's error around java.io.FileNotFoundException
            if "FileNotFoundException" in str(exc):
                return []
            raise
        return [
            Entry(str(s.getPath().getName()), bool(s.isDirectory()), s.getModificationTime() / 1000.0) for s in statuses
        ]

    def delete(self, path: str) -> None:
        hadoop_path = self._path(path)
        self._fs(hadoop_path).delete(hadoop_path, True)

    def remove_if_empty(self, path: str) -> None:
        hadoop_path = self._path(path)
        with contextlib.suppress(Exception):  # Py4J's error around "directory is not empty"
            self._fs(hadoop_path).delete(hadoop_path, False)

    def read_bytes(self, path: str) -> bytes:
        hadoop_path = self._path(path)
        try:
            stream = self._fs(hadoop_path).open(hadoop_path)
        except Exception as exc:
            if "FileNotFoundException" in str(exc):
                raise FileNotFoundError(path) from None
            raise
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def write_bytes(self, path: str, data: bytes) -> None:
        # one create-and-close: an object store shows the object whole; HDFS shows it once closed
        self._write(path, data, overwrite=True)

    def create_new(self, path: str, data: bytes) -> bool:
        try:
            self._write(path, data, overwrite=False)
        except Exception as exc:
            if "FileAlreadyExistsException" in str(exc) or "already exists" in str(exc):
                return False
            raise
        return True

    def _write(self, path: str, data: bytes, *, overwrite: bool) -> None:
        hadoop_path = self._path(path)
        stream = self._fs(hadoop_path).create(hadoop_path, overwrite)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def read_table(self, spark: SparkSession | None, path: str) -> pd.DataFrame:
        return self._spark.read.parquet(path).toPandas()  # a run's small tables only (k rows, a bounded sample)


class UnreachableStorage(Storage):
    """A root the Spark Connect client cannot reach: Spark can still write there (a model); nothing else can."""

    reachable = False

    def _refuse(self, *_: Any) -> Any:
        raise ConfigError(
            f"output.path: {self.root!r} cannot be reached from this Spark Connect client (the server writes "
            "where this process cannot look); use catalog tables (output.catalog.database) or a root both can see"
        )

    exists = mkdirs = list = delete = remove_if_empty = read_bytes = write_bytes = create_new = read_table = _refuse  # type: ignore[assignment]


def is_classic(spark: SparkSession) -> bool:
    """True for a classic (JVM-backed) session, False over Spark Connect."""
    return not type(spark).__module__.startswith("pyspark.sql.connect")


def for_root(spark: SparkSession | None, path: str) -> Storage:
    """The storage of an output root ``path``, resolved as Spark resolves it (see the module's docstring).

    Without a session (re-rendering a report on a laptop) only local paths are possible. Over Spark Connect a
    root the client cannot reach gives ``UnreachableStorage``.
    """
    scheme = urlparse(path).scheme
    if spark is None:
        if scheme not in ("", "file"):
            raise ConfigError(f"{path}: a {scheme}: path needs a Spark session to reach it; pass --config")
        return LocalStorage(os.path.abspath(LocalStorage.local(path)))
    if is_classic(spark):
        return _classic(spark, path)
    return _over_connect(spark, path)


def _classic(spark: SparkSession, path: str) -> Storage:
    hadoop = HadoopStorage(spark, path)
    qualified = hadoop.qualified(path)
    if not qualified.startswith("file:"):
        return HadoopStorage(spark, qualified)
    local = os.path.abspath(urlparse(qualified).path)
    on_local_default = hadoop.default_fs().startswith("file:")
    return LocalStorage(local if on_local_default else "file:" + local)


def _over_connect(spark: SparkSession, path: str) -> Storage:
    """A local storage if the server reads, at ``path``, the probe file this client writes there."""
    scheme = urlparse(path).scheme
    if scheme not in ("", "file"):
        return UnreachableStorage(path)
    local = os.path.abspath(LocalStorage.local(path))
    spark_path = local if scheme == "" else "file:" + local
    created = _missing_parents(local)
    token = uuid.uuid4().hex
    probe = os.path.join(local, f"probe-{token}.txt")  # not "_...": Spark skips such names as hidden files
    try:
        os.makedirs(local, exist_ok=True)
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write(token)
    except OSError:
        _remove_created(created)
        return UnreachableStorage(spark_path)
    try:
        seen = spark.read.text(LocalStorage.local(probe) if scheme == "" else "file:" + probe).select(
            "value", F.col("_metadata.file_path").alias("file")
        )
        rows = seen.collect()
        same = len(rows) == 1 and rows[0]["value"] == token and str(rows[0]["file"]).startswith("file:")
    except Exception:  # the server cannot read it: not the same disk, or not its default file system
        same = False
    finally:
        os.remove(probe)
    if not same:
        _remove_created(created)
        return UnreachableStorage(spark_path)
    return LocalStorage(spark_path)


def _missing_parents(local: str) -> list[str]:
    """The folders of ``local`` (itself included) that do not exist yet, outermost first."""
    missing = []
    current = local
    while not os.path.exists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return list(reversed(missing))


def _remove_created(created: list[str]) -> None:
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            break
