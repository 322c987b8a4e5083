"""The package version, in one place (the root package, the manifest and the command line read it)."""

__version__ = "0.1.0"
