# Databricks notebook source
# MAGIC %md
# MAGIC # Customer segmentation
# MAGIC
# MAGIC Runs the whole job (validate, features, k sweep, segments, publish) on this notebook's `spark` session
# MAGIC with the `segmentation` library (install its wheel on the cluster or with `%pip install`). It never
# MAGIC creates or stops a session. Parameters come from the widgets above; a job passes them as base parameters.

# COMMAND ----------

dbutils.widgets.text("input_path", "/Volumes/main/retail/landing/transactions/", "Input (file, folder or glob)")
dbutils.widgets.text("output_path", "/Volumes/main/retail/segmentation/", "Output root")
dbutils.widgets.text("config", "../conf/databricks.yaml", "Config file (empty: the defaults)")
dbutils.widgets.text("as_of", "", "As-of date YYYY-MM-DD (empty: latest valid date)")
dbutils.widgets.text("k_min", "2", "Smallest k")
dbutils.widgets.text("k_max", "10", "Largest k")
dbutils.widgets.text("run_id", "main", "Run id (a re-run replaces it)")

# COMMAND ----------

from segmentation import config, job

widgets = {
    name: dbutils.widgets.get(name)
    for name in ("input_path", "output_path", "config", "as_of", "k_min", "k_max", "run_id")
}
overrides = [
    f"model.k_min={widgets['k_min']}",
    f"model.k_max={widgets['k_max']}",
    f"output.run_id={widgets['run_id']}",
]
if widgets["as_of"]:
    overrides.append(f"features.as_of={widgets['as_of']}")
cfg = config.load(
    [widgets["config"]] if widgets["config"] else [],
    overrides,
    input_path=widgets["input_path"],
    output_path=widgets["output_path"],
)
result = job.run(spark, cfg)
print(f"published {result.run_folder}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## The sweep and the chosen k

# COMMAND ----------

print(result.choice.reason)
sweep_table = spark.read.parquet(f"{result.run_folder}/sweep").orderBy("k")
display(sweep_table)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Segment profiles

# COMMAND ----------

profiles_table = spark.read.parquet(f"{result.run_folder}/profiles").orderBy("segment")
display(profiles_table)
