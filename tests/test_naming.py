"""Segment names: the documented rules, uniqueness, and customer-table names."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.model import naming, pipeline


@pytest.mark.parametrize(
    ("z", "name"),
    [
        ({"recency_days": -1.0, "frequency": 1.2, "monetary": 1.5}, "Champions"),
        ({"recency_days": 0.2, "frequency": 0.9, "monetary": 0.4}, "Loyal"),
        ({"recency_days": 0.9, "frequency": 0.6, "monetary": 0.8}, "At risk"),
        ({"recency_days": 0.0, "frequency": -0.2, "monetary": 0.9}, "Big spenders"),
        ({"recency_days": 0.0, "frequency": -0.2, "monetary": 0.1, "avg_order_value": 1.0}, "Big spenders"),
        ({"recency_days": -1.2, "frequency": -0.5, "monetary": -0.3, "tenure_days": -1.1}, "New"),
        ({"recency_days": -0.8, "frequency": 0.2, "monetary": 0.0, "tenure_days": 0.3}, "Promising"),
        ({"recency_days": 1.4, "frequency": -0.7, "monetary": -0.8}, "Lost"),
        ({"recency_days": 0.7, "frequency": -0.4, "monetary": -0.3}, "Hibernating"),
        ({"recency_days": 0.1, "frequency": 0.1, "monetary": 0.1}, "Need attention"),
        ({}, "Need attention"),
    ],
)
def test_transaction_rules(z: dict[str, float], name: str) -> None:
    assert naming.transaction_name(z) == name


def test_repeated_names_get_value_qualifiers() -> None:
    assert naming.unique_names({1: "Loyal", 2: "Champions", 3: "Loyal"}) == {
        1: "Loyal (higher value)",
        2: "Champions",
        3: "Loyal (lower value)",
    }
    assert naming.unique_names({1: "Lost", 2: "Lost", 3: "Lost"}) == {
        1: "Lost (tier 1)",
        2: "Lost (tier 2)",
        3: "Lost (tier 3)",
    }


def test_customer_table_names_from_its_own_features() -> None:
    numeric = ["Age", "Annual Income (k$)", "Spending Score (1-100)"]
    assert naming.attribute_name({"Age": 0.1, "Annual Income (k$)": 1.3, "Spending Score (1-100)": -1.1}, numeric) == (
        "High annual income, low spending score"
    )
    assert naming.attribute_name({"Age": -0.7, "Annual Income (k$)": 0.2, "Spending Score (1-100)": 0.1}, numeric) == (
        "Low age"
    )
    assert naming.attribute_name({"Age": 0.1}, numeric) == "Average customers"


def test_name_segments_maps_centroid_dimensions() -> None:
    centroids = {1: [-1.0, 1.0, 1.0], 2: [1.5, -1.0, -1.0], 3: [1.6, -1.1, -1.2]}
    names = naming.name_segments(centroids, features=["recency_days", "frequency", "monetary"], kind="transactions")
    assert names == {1: "Champions", 2: "Lost (higher value)", 3: "Lost (lower value)"}


class FittedCentres:
    """A stand-in for a fitted KMeansModel: only its centroids."""

    def __init__(self, centres: list[list[float]]) -> None:
        self.centres = centres

    def clusterCenters(self) -> list[np.ndarray]:  # Spark ML's name
        return [np.array(c) for c in self.centres]


def test_a_customer_table_s_names_read_its_numeric_features_not_its_one_hot_dimensions() -> None:
    # two numeric features, then one-hot Gender (Female, Male): the category shares are not levels to name
    spec = pipeline.FeatureSpec(
        numeric=("Annual Income (k$)", "Spending Score (1-100)"), log=(), categorical=("Gender",), order_by=None
    )
    clusterer = FittedCentres([[1.3, -1.1, 0.9, 0.1], [-0.8, 1.2, 0.0, 1.0], [0.1, 0.2, 5.0, -5.0]])
    names = pipeline.segment_names(clusterer, {0: 2, 1: 1, 2: 3}, spec, kind="customers")
    assert names == {
        1: "Low annual income, high spending score",
        2: "High annual income, low spending score",
        3: "Average customers",  # far-off one-hot values change nothing
    }
    with pytest.raises(ValueError, match="zip"):  # the caller must hand exactly one value per named feature
        naming.name_segments({1: [1.0, 2.0, 3.0]}, features=["recency_days", "frequency"], kind="transactions")
