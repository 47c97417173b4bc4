"""``stream-app estimate``: the label-free quality estimate per model version and window."""
