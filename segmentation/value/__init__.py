"""Customer value: buy-till-you-die models (BG/NBD, Pareto/NBD) and Gamma-Gamma spend, their math in numpy and
scipy (``models``), and each customer's summary and the likelihood's weighted tuples in Spark (``summary``)."""
