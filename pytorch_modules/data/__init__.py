"""Training data: the training set and its crops, augmentation, corpus preparation and the demo
corpus's speech synthesiser."""
