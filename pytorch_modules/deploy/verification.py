"""Decisions with a trained model outside the recipe (pytorch_modules.bin.verify, .calibrate):
the cosine score of two embeddings (pytorch_modules/inference.py makes them from audio), and the
decision threshold; or the calibrated log-likelihood ratio and the Bayes threshold.

The decision threshold lives next to the model in a small `key value` sidecar,
`<model without .pt>.threshold` (exp/m/final.threshold for exp/m/final.pt), written by
pytorch_modules.bin.calibrate from scores of development trials; a trial is accepted when its
cosine score is >= the threshold (the convention of pytorch_modules/scoring/metrics.py).

A score calibration, `<model without .pt>.calibration` (pytorch_modules/scoring/calibration.py,
written by pytorch_modules.bin.calibrate_scores --calibration-out), turns the back-end score of
two recordings and their quality measures into a log-likelihood ratio (calibrated_llr); a
trial is accepted when it is >= the Bayes threshold -logit(p_target) (metrics.bayes_threshold).
"""
import re
from pathlib import Path

import numpy as np

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio import sidecar
from pytorch_modules.scoring import calibration
from pytorch_modules.scoring.metrics import compute_eer, compute_min_dcf

THRESHOLD_SUFFIX = ".threshold"


def cosine(a, b):
    """Cosine similarity of two embeddings (the recipe's back-end)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if not np.isfinite(norm) or norm == 0:
        # Unusable audio is refused before (check_usable): this is the model's own doing.
        raise RecipeError("an embedding is zero or not finite, so the cosine score is "
                          "undefined; the model's weights may be damaged: check the model.")
    return float(np.dot(a, b) / norm)


# --operating-point mindcfP of bin/calibrate.py: P is the target prior.
_MINDCF = re.compile(r"^mindcf(0?\.\d+)$")


def operating_threshold(scores, labels, operating_point):
    """(threshold, extra sidecar entries) of labelled scores at an operating point: eer, the
    threshold of the equal-error-rate point, or mindcfP, where the normalised detection cost at
    p_target P is lowest."""
    if operating_point == "eer":
        eer, threshold = compute_eer(scores, labels)
        return threshold, {"eer_percent": f"{100 * eer:.4f}"}
    match = _MINDCF.match(operating_point)
    if not match:
        raise RecipeError(f"unknown --operating-point {operating_point!r}: use eer or mindcfP "
                          f"with P the target prior, e.g. mindcf0.01.")
    p_target = float(match.group(1))
    min_dcf, threshold = compute_min_dcf(scores, labels, p_target)
    if threshold == float("inf"):
        raise RecipeError(f"at p_target {p_target:g} rejecting every trial costs least on these "
                          f"scores, so there is no threshold to store; use --operating-point eer.")
    return threshold, {"p_target": f"{p_target:g}", "min_dcf": f"{min_dcf:.4f}"}


def threshold_path(model_path) -> Path:
    """exp/m/final.pt -> exp/m/final.threshold."""
    return Path(model_path).with_suffix(THRESHOLD_SUFFIX)


def write_threshold(path, entries: dict) -> None:
    """The sidecar: a comment line, then `key value` lines (threshold first)."""
    sidecar.write(path, "decision threshold for pytorch_modules.bin.verify: accept when the "
                  "cosine score >= threshold", entries)


def read_threshold(path) -> dict:
    """The sidecar's entries, with `threshold` as a float."""
    entries = sidecar.read(path, "write it again with pytorch_modules.bin.calibrate.")
    try:
        entries["threshold"] = float(entries["threshold"])
    except (KeyError, ValueError):
        raise RecipeError(f"{path} holds no numeric 'threshold' line; write it again with "
                          f"pytorch_modules.bin.calibrate.") from None
    return entries


def calibration_path(model_path) -> Path:
    """exp/m/final.pt -> exp/m/final.calibration."""
    return calibration.calibration_path(model_path)


def calibrated_llr(cal: calibration.Calibration, enroll, test, enroll_frames, test_frames,
                   source="the calibration"):
    """(llr, back-end score) of two embeddings under a calibration: the score as the recipe's
    back-end computes it (cosine; AS-norm with the calibration's cohort, mean subtraction and
    top-N), the quality measures as the recipe computes them (log frame counts; the cohort
    means of AS-norm).  A measure that cannot be computed is a RecipeError saying why."""
    from pytorch_modules.fileio.embedding_io import subtract_mean
    from pytorch_modules.scoring.cosine import row_cosines
    emb = np.stack([enroll, test]).astype(np.float32)
    ids = {"enroll": 0, "test": 1}
    rows = (np.array([0]), np.array([1]))
    score, means = float(row_cosines(emb, ids, *rows)[0]), None
    if cal.cohort is not None:
        try:
            mean, cohort_unit, top_n = cal.cohort.load()
        except RecipeError as e:
            needs = ("AS-norm scores" if cal.backend == "asnorm" else "cohort-mean measures")
            raise RecipeError(f"cannot compute the {needs} that {source} was fitted on: {e} "
                              f"(run verify from the recipe folder where stage 5 wrote "
                              f"{source}, or give --no-calibration to decide on the cosine "
                              f"score and the threshold sidecar)") from None
        emb = subtract_mean(emb, mean, "the recordings' embeddings")
        mu, sd = calibration.side_statistics(emb, [0, 1], cohort_unit, top_n)
        if cal.backend == "asnorm":
            raw = float(row_cosines(emb, ids, *rows)[0])
            score = 0.5 * ((raw - mu[0]) / sd[0] + (raw - mu[1]) / sd[1])
        means = {"enroll": mu[0], "test": mu[1]}
    features = calibration.trial_features(cal.groups, ["enroll"], ["test"],
                                          {"enroll": enroll_frames, "test": test_frames},
                                          means, "the two recordings")
    return float(cal.llr([score], features)[0]), score
