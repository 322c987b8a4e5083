# Databricks notebook source
# MAGIC %md
# MAGIC # Customer segmentation
# MAGIC
# MAGIC Runs the whole job (validate, features, k sweep, segments, publish) on this notebook's `spark` session
# MAGIC with the `segmentation` library (install its wheel on the cluster or with `%pip install`). It never
# MAGIC creates or stops a session. Parameters come from the widgets above; a job passes them as base parameters.
# MAGIC
# MAGIC Files go to a Unity Catalog volume (`/Volumes/<catalog>/<schema>/<volume>/...`, not `/dbfs`). With a
# MAGIC database set, the tables are published as Unity Catalog tables (`<catalog>.<database>.segments`, ...,
# MAGIC `.runs`) and the volume keeps the model; with an empty database, everything is files under the output root.
# MAGIC On serverless compute, pass a config with `spark.persist: false` (no cache or persist there).

# COMMAND ----------

dbutils.widgets.text("input_path", "/Volumes/main/retail/landing/transactions/", "Input (file, folder or glob)")
dbutils.widgets.text("input_table", "", "Or an input table or view (catalog.schema.name; empty: the files)")
dbutils.widgets.text("where", "", "Lines to read: a SQL predicate (empty: all)")
dbutils.widgets.text("output_path", "/Volumes/main/retail/segmentation/", "Output root (a volume)")
dbutils.widgets.text("config", "../conf/databricks.yaml", "Config file (empty: the defaults)")
dbutils.widgets.text("catalog", "main", "Catalog of the tables (empty: the session's current one)")
dbutils.widgets.text("database", "segmentation", "Database of the tables (empty: files under the output root)")
dbutils.widgets.text("as_of", "", "As-of date YYYY-MM-DD (empty: latest valid date)")
dbutils.widgets.text("k_min", "2", "Smallest k")
dbutils.widgets.text("k_max", "10", "Largest k")
dbutils.widgets.text("run_id", "main", "Run id (a re-run replaces it)")

# COMMAND ----------

from segmentation import load_config, read_run_table, run

widgets = {
    name: dbutils.widgets.get(name)
    for name in (
        *("input_path", "input_table", "where", "output_path", "config", "catalog", "database"),
        *("as_of", "k_min", "k_max", "run_id"),
    )
}


def text_or_null(value: str) -> str:
    """A widget's text as a --set value: quoted, so it stays text; empty means null."""
    return repr(value) if value else ""


overrides = [
    f"model.k_min={widgets['k_min']}",
    f"model.k_max={widgets['k_max']}",
    f"output.run_id={text_or_null(widgets['run_id'])}",
    f"output.catalog.catalog={text_or_null(widgets['catalog'])}",
    f"output.catalog.database={text_or_null(widgets['database'])}",
]
if widgets["as_of"]:
    overrides.append(f"features.as_of={widgets['as_of']}")
if widgets["where"]:
    overrides.append(f"input.where={text_or_null(widgets['where'])}")
cfg = load_config(
    [widgets["config"]] if widgets["config"] else [],
    overrides,
    input_path=None if widgets["input_table"] else widgets["input_path"],
    input_table=widgets["input_table"] or None,
    output_path=widgets["output_path"],
)
result = run(spark, cfg)
print(f"published {result.run_folder}")


def run_table(name: str):
    """One table of the run just published: its partition of the catalog table, or its folder's Parquet."""
    return read_run_table(spark, cfg, as_of=result.as_of, run_folder=result.run_folder, table=name)


# COMMAND ----------

# MAGIC %md
# MAGIC ## The sweep and the chosen k

# COMMAND ----------

print(result.choice.reason)
sweep_table = run_table("sweep").orderBy("k")
display(sweep_table)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Segment profiles

# COMMAND ----------

profiles_table = run_table("profiles").orderBy("segment")
display(profiles_table)
