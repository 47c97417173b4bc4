"""The scoring worker: decode → features → predict → publish, one batch at a time."""
