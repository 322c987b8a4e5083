"""The job's configuration: the schema (``schema``), its cross-key rules (``rules``), loading from YAML files
and ``--set`` overrides (``loader``), pydantic's errors in our words (``wording``) and path helpers (``paths``).

The names below are the package's public face: ``load`` a configuration, and the models it is made of.
"""

from segmentation.config.known import EPOCH_FORMATS, TRANSACTION_FEATURES, unavailable_features
from segmentation.config.loader import load, load_with_origins, parse_override, read_yaml
from segmentation.config.paths import input_root, is_local_path, local_path
from segmentation.config.schema import (
    CatalogOutputConfig,
    ColumnMapping,
    CsvOptions,
    CustomerTableOptions,
    DriftConfig,
    DriftThresholds,
    FeaturesConfig,
    HistoryConfig,
    InputConfig,
    JobConfig,
    LimitsConfig,
    MlflowConfig,
    ModelConfig,
    NumberOptions,
    OutputConfig,
    PrivacyConfig,
    QualityConfig,
    ReportConfig,
    SelectionConfig,
    SparkConfig,
    ValueConfig,
)
from segmentation.config.show import effective_yaml
from segmentation.errors import ConfigError

__all__ = [
    "EPOCH_FORMATS",
    "TRANSACTION_FEATURES",
    "CatalogOutputConfig",
    "ColumnMapping",
    "ConfigError",
    "CsvOptions",
    "CustomerTableOptions",
    "DriftConfig",
    "DriftThresholds",
    "FeaturesConfig",
    "HistoryConfig",
    "InputConfig",
    "JobConfig",
    "LimitsConfig",
    "MlflowConfig",
    "ModelConfig",
    "NumberOptions",
    "OutputConfig",
    "PrivacyConfig",
    "QualityConfig",
    "ReportConfig",
    "SelectionConfig",
    "SparkConfig",
    "ValueConfig",
    "effective_yaml",
    "input_root",
    "is_local_path",
    "load",
    "load_with_origins",
    "local_path",
    "parse_override",
    "read_yaml",
    "unavailable_features",
]
