"""One row of features per customer at an explicit as-of date (``table``)."""
