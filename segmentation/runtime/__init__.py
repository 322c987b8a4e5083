"""What a run runs in: the Spark session (``session``), the run context every job shares (``context``), thread
pools (``threads``), stage timing (``timing``), progress (``progress``) and MLflow tracking (``tracking``)."""
