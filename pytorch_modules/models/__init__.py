"""Speaker-embedding networks."""
from pytorch_modules.models.rescnn import ResCNN

__all__ = ["ResCNN"]
