"""Speaker-embedding networks."""
from pytorch_modules.models.rescnn import INPUT_NORMS, POOLINGS, ResCNN

__all__ = ["INPUT_NORMS", "POOLINGS", "ResCNN", "build_model"]


def build_model(model_config) -> ResCNN:
    """The network of a config's `model:` section (config.ModelConfig)."""
    m = model_config
    return ResCNN(m.widths, m.blocks, m.embedding_dim, m.embedding_bn, m.pooling, m.input_bins,
                  m.input_norm)
