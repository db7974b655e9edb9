"""Classical speaker-verification baselines on MFCCs (pytorch_modules/features/mfcc.py), each a fixed-size
vector per utterance that is scored by cosine like the neural embeddings:

  mfcc_stats_lda  the mean and standard deviation of the utterance's MFCC frames, projected by
                  an LDA fitted on the training speakers.
  gmm_ubm         a GMM-UBM supervector system (Campbell et al. 2006; Reynolds et al. 2000) on
                  mean-normalised MFCCs (Kaldi's sliding CMN over 300 frames):
                  a diagonal-covariance universal background model (scikit-learn's
                  GaussianMixture) on training frames; per utterance the UBM means MAP-adapted
                  to its frames (relevance factor r), stacked as the KL-divergence supervector
                  sqrt(w_c) (m_c - mu_c) / sigma_c; then PCA and an LDA fitted on the training
                  speakers.

Both LDAs are scikit-learn's LinearDiscriminantAnalysis with Ledoit-Wolf shrinkage (there are
far fewer speakers than dimensions on small corpora), to at most (speakers - 1) dimensions; the
training-set mean is removed before cosine scoring.  Every random choice (the frames the UBM is
fitted on, its initialisation) is a function of the seed.
"""
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.mixture import GaussianMixture

from pytorch_modules.errors import RecipeError
from pytorch_modules.features.mfcc import sliding_mean_normalise

SYSTEMS = ("mfcc_stats_lda", "gmm_ubm")


@dataclass
class Options:
    num_gauss: int = 128           # UBM components
    ubm_frames: int = 200_000      # training frames the UBM is fitted on (a random subset)
    ubm_iterations: int = 20       # EM iterations of the UBM
    relevance: float = 16.0        # MAP relevance factor (Reynolds et al. 2000)
    pca_dim: int = 400             # supervector PCA before the LDA (capped by the data)
    lda_dim: int = 200             # capped at speakers - 1
    cmn_window: int = 300          # gmm_ubm: frames of the sliding cepstral mean
    seed: int = 0


def utterance_stats(frames: np.ndarray) -> np.ndarray:
    """[mean, standard deviation] of the frames, per dimension."""
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])


def frame_sample(feats: list, total: int, seed: int) -> np.ndarray:
    """About `total` frames drawn evenly from every utterance (all of them when fewer)."""
    count = sum(len(f) for f in feats)
    rng = np.random.default_rng(seed)
    if count <= total:
        return np.concatenate(feats)
    keep = total / count
    return np.concatenate([f[rng.random(len(f)) < keep] for f in feats])


def fit_ubm(frames: np.ndarray, o: Options) -> GaussianMixture:
    if len(frames) < 10 * o.num_gauss:
        raise RecipeError(f"the UBM of {o.num_gauss} Gaussians needs at least "
                          f"{10 * o.num_gauss} training frames, got {len(frames)}; use fewer "
                          f"Gaussians (--num-gauss) or more training data")
    # k-means initialisation and diagonal covariances, as the classic recipes; reg_covar keeps
    # a variance from collapsing on a cluster of identical frames (digital silence).
    return GaussianMixture(o.num_gauss, covariance_type="diag", max_iter=o.ubm_iterations,
                           reg_covar=1e-3, random_state=o.seed).fit(frames)


def supervector(frames: np.ndarray, ubm: GaussianMixture, relevance: float) -> np.ndarray:
    """The MAP-adapted means of the UBM as a KL-divergence supervector (see the module doc)."""
    posteriors = ubm.predict_proba(frames)                    # (frames, C)
    counts = posteriors.sum(axis=0)                           # zeroth-order statistics
    first = posteriors.T @ frames                             # first-order statistics (C, D)
    alpha = (counts / (counts + relevance))[:, None]
    means = alpha * first / np.maximum(counts, 1e-10)[:, None] + (1 - alpha) * ubm.means_
    scaled = np.sqrt(ubm.weights_)[:, None] * (means - ubm.means_) / np.sqrt(ubm.covariances_)
    return scaled.ravel()


@dataclass
class Projection:
    """Training-set centring, optional PCA and the LDA: vectors -> embeddings."""
    mean: np.ndarray
    pca: PCA | None
    lda: LinearDiscriminantAnalysis

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        x = vectors - self.mean
        if self.pca is not None:
            x = self.pca.transform(x)
        return self.lda.transform(x).astype(np.float32)


def fit_projection(vectors: np.ndarray, speakers: list, o: Options, pca_dim=None) -> Projection:
    """Centre, reduce to pca_dim dimensions (None: none), and LDA on the training speakers."""
    num_speakers = len(set(speakers))
    if num_speakers < 2:
        raise RecipeError("an LDA needs at least 2 training speakers")
    mean = vectors.mean(axis=0)
    x = vectors - mean
    pca = None
    if pca_dim is not None:
        pca = PCA(min(pca_dim, len(x) - 1, x.shape[1]), random_state=o.seed).fit(x)
        x = pca.transform(x)
    lda = LinearDiscriminantAnalysis(n_components=min(o.lda_dim, num_speakers - 1, x.shape[1]),
                                     solver="eigen", shrinkage="auto").fit(x, speakers)
    return Projection(mean, pca, lda)


def train_and_embed(system: str, train_feats: list, train_speakers: list, eval_feats: dict,
                    o: Options, log=print) -> dict:
    """Trains `system` on the training utterances' MFCC frames and returns {set: (n, dim)
    embeddings} for each evaluation set's list of MFCC frame matrices."""
    if system == "mfcc_stats_lda":
        project = fit_projection(np.stack([utterance_stats(f) for f in train_feats]),
                                 train_speakers, o)
        return {name: project(np.stack([utterance_stats(f) for f in feats]))
                for name, feats in eval_feats.items()}
    if system == "gmm_ubm":
        train_feats = [sliding_mean_normalise(f, o.cmn_window) for f in train_feats]
        eval_feats = {name: [sliding_mean_normalise(f, o.cmn_window) for f in feats]
                      for name, feats in eval_feats.items()}
        frames = frame_sample(train_feats, o.ubm_frames, o.seed)
        log(f"fitting a {o.num_gauss}-Gaussian UBM on {len(frames)} frames")
        ubm = fit_ubm(frames, o)
        log(f"UBM: {ubm.n_iter_} EM iterations, converged {ubm.converged_}")
        vectors = lambda feats: np.stack([supervector(f, ubm, o.relevance) for f in feats])
        project = fit_projection(vectors(train_feats), train_speakers, o, pca_dim=o.pca_dim)
        return {name: project(vectors(feats)) for name, feats in eval_feats.items()}
    raise RecipeError(f"unknown classical system '{system}' (choose one of {', '.join(SYSTEMS)})")
