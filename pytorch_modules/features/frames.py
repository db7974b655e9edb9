"""Frames of a feature matrix: a fixed-length stretch of an utterance, repeated when the
utterance is shorter (training crops, and the shortest input a network embeds)."""
import numpy as np


def crop_or_pad(feats: np.ndarray, start: int, length: int) -> np.ndarray:
    """`length` frames from `start`; an utterance shorter than that is repeated to fill it."""
    if feats.shape[0] >= length:
        return feats[start:start + length]
    reps = -(-length // feats.shape[0])
    return np.concatenate([feats] * reps)[:length]
