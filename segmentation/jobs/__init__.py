"""The two jobs: ``segment`` (``segmentation run``: the whole job) and ``score`` (``segmentation score``: new
customers into a published run's segments)."""
