"""Customer segmentation from transaction logs with PySpark and Spark MLlib KMeans."""

__version__ = "0.1.0"
