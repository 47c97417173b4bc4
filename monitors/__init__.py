"""Online drift detectors (River) over inputs, scores and delayed labels.

Part of the fixed layout; its detectors arrive with the drift-detection issue. The topics and
tables they will read and write already exist: predictions carry the model version and the input
CreateTime, the card state is checkpointed per partition, and the warehouse keeps every score.
"""
