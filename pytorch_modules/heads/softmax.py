"""Plain softmax over a linear layer with bias (the paper's Eq 1), the baseline without margin."""
import torch
import torch.nn.functional as F
from torch import nn

from pytorch_modules.heads.base import Head, HeadOutput


class SoftmaxHead(Head):
    """Plain softmax over a linear layer with bias (Eq 1)."""

    def __init__(self, embedding_dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(embedding_dim, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> HeadOutput:
        logits = self.fc(x)
        with torch.no_grad():
            cos = F.linear(F.normalize(x), F.normalize(self.fc.weight))
            target_cos = cos.gather(1, labels[:, None]).squeeze(1)
        return HeadOutput(F.cross_entropy(logits, labels), logits, target_cos)
