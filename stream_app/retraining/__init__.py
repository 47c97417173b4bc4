"""The retraining job: read a labelled window from the warehouse, train a candidate, gate it."""
