"""Speaker-embedding networks (backbones) and the registry the config's `model.type` names.

A backbone is an nn.Module with an `embedding_dim` attribute and forward(feats (batch, bins,
frames)) -> embeddings (batch, embedding_dim).  Its constructor's annotated keyword arguments
are the config's `model:` keys (config.py reads them from the signature): `embedding_dim` and
`input_bins` among them; OPTION_RANGES gives their allowed values, and an optional
`options_problem(options)` checks combinations.  A new backbone is one file here and one line
in BACKBONES.
"""
from pytorch_modules.models.ecapa_tdnn import ECAPATDNN
from pytorch_modules.models.rescnn import INPUT_NORMS, POOLINGS, ResCNN
from pytorch_modules.models.resnet import ResNet34

BACKBONES = {"rescnn": ResCNN, "resnet34": ResNet34, "ecapa_tdnn": ECAPATDNN}

__all__ = ["BACKBONES", "ECAPATDNN", "INPUT_NORMS", "POOLINGS", "ResCNN", "ResNet34",
           "build_model"]


def build_model(model_config):
    """The network of a config's `model:` section."""
    return BACKBONES[model_config.type](**model_config.options)
