"""Numerics of the recipe: features, data, models, losses, training, embeddings, scoring."""
