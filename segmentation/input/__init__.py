"""Reading and validating the input: ``sources`` (files or a catalog table, as lines), ``parsing`` (typed values),
``rules`` (each line's first reason, the window), ``duplicates`` (exact copies), ``customers`` (a customer table),
``quarantine`` (counts, quarantined lines, the threshold), ``diagnostics`` (hints that name the column and
setting), ``clean`` (clean lines for the features) and ``validate`` (the flow). Quarantine is decided here."""
