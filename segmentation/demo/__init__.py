"""Demo and planted data: deterministic synthetic logs (``generate``) and planted scenarios for the choice of k
(``planted``). The product never imports this package; the ``generate`` command, the tests and the benchmark do."""
