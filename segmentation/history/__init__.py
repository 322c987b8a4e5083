"""Segments over time: the baseline run (``baseline``), segment ids kept across runs (``identity``), who moved
where (``migration``) and every committed run read as one table (``readers``)."""
