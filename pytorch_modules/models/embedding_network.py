"""What every backbone shares: the input normalisation, the check of the feature height, and
the embedding layer on top of the pooled vector (an FC layer, then optionally a BatchNorm
without affine parameters: see rescnn.py for why).

A backbone subclasses EmbeddingNetwork, calls `input_options` first and `embedding_layer`
where it builds its FC layer (the place keeps the order in which weights are initialised from
the seed), and implements `fc_output` on `normalised_input(feats)`.
"""
import torch
from torch import nn

# model.input_norm: utterance_mean subtracts each bin's mean over the input's frames (the whole
# utterance at test time); none keeps the log spectrum as it is.
INPUT_NORMS = ("utterance_mean", "none")


class EmbeddingNetwork(nn.Module):
    embedding_dim: int
    input_bins: int
    input_norm: str

    def input_options(self, input_bins: int, input_norm: str) -> None:
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"unknown input_norm '{input_norm}' "
                             f"(choose one of {', '.join(INPUT_NORMS)})")
        self.input_norm, self.input_bins = input_norm, input_bins

    def embedding_layer(self, pooled_dim: int, embedding_dim: int, embedding_bn: bool) -> None:
        self.fc = nn.Linear(pooled_dim, embedding_dim)
        self.embedding_bn = (nn.BatchNorm1d(embedding_dim, affine=False) if embedding_bn
                             else nn.Identity())
        self.embedding_dim = embedding_dim

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.embedding_bn(self.fc_output(feats))

    def fc_output(self, feats: torch.Tensor) -> torch.Tensor:
        """The embedding before the embedding BatchNorm (the same as forward without one)."""
        raise NotImplementedError

    def normalised_input(self, feats: torch.Tensor, check_bins: bool = True) -> torch.Tensor:
        """feats (batch, bins, frames), checked against input_bins, after input_norm."""
        if check_bins and feats.shape[1] != self.input_bins:
            raise ValueError(f"this model was built for {self.input_bins}-bin features, got "
                             f"{feats.shape[1]} bins")
        if self.input_norm == "utterance_mean":
            feats = feats - feats.mean(dim=2, keepdim=True)
        return feats
