"""The online learner: a River classifier learning from labels, scoring in shadow."""
