"""foldgate's domain layer: store, sources, policy, features, folds, metrics, gating,
archive, decision, report and pipeline. No click here; the CLI calls this API."""

__version__ = "0.1.0"
