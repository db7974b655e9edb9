"""Speaker-embedding networks (backbones) and the registry the config's `model.type` names.

A backbone is an nn.Module with an `embedding_dim` attribute, forward(feats (batch, bins,
frames)) -> embeddings (batch, embedding_dim), and a `from_config(model_config)` class method
that reads the `model:` section (config.ModelConfig).  A new backbone is one file here and one
line in BACKBONES.
"""
from pytorch_modules.models.rescnn import INPUT_NORMS, POOLINGS, ResCNN

BACKBONES = {"rescnn": ResCNN}

__all__ = ["BACKBONES", "INPUT_NORMS", "POOLINGS", "ResCNN", "build_model"]


def build_model(model_config):
    """The network of a config's `model:` section."""
    return BACKBONES[model_config.type].from_config(model_config)
