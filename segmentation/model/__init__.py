"""The model: preprocessing and KMeans (``pipeline``), the sweep over k (``sweep``), its measures (``metrics``)
and their words (``sweep_text``), the choice of k (``selection``), segment names (``naming``) and profiles
(``profiles``)."""
