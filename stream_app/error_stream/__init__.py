"""``stream-app monitor-errors``: drift monitors over the error stream of joined labels."""
