"""Classical speaker-verification baselines on MFCCs (pytorch_modules/features/mfcc.py), each a
fixed-size vector per utterance.  Their settings are in one file, conf/classical.yaml (every
key of every system, each with its reason; `load_settings` reads and checks it):

  mfcc_stats_lda  the mean and standard deviation of the utterance's MFCC frames.
  gmm_ubm         a GMM-UBM supervector system (Campbell et al. 2006; Reynolds et al. 2000): a
                  diagonal-covariance universal background model (scikit-learn's
                  GaussianMixture) on training frames; per utterance the UBM means MAP-adapted
                  to its frames (relevance factor r), stacked as the KL-divergence supervector
                  sqrt(w_c) (m_c - mu_c) / sigma_c, reduced by a PCA fitted on the training
                  utterances.
  ivector         Kaldi's i-vector system (Dehak et al. 2011; Kaldi's ivector-extractor): a
                  UBM trained as Kaldi's train_diag_ubm.sh + train_full_ubm.sh do (diagonal EM,
                  then full-covariance EM from it); each utterance's Baum-Welch statistics,
                  centred on the UBM means and whitened by its covariances; a total-variability
                  matrix T trained by EM (`TotalVariability`); the i-vector is the posterior
                  mean of w in  supervector = m + T w,  w ~ N(0, I).

Every system has a back-end, `backend` in its settings:
  cosine  the system fits an LDA on the training speakers (scikit-learn's
          LinearDiscriminantAnalysis with Ledoit-Wolf shrinkage: far fewer speakers than
          dimensions on small corpora; at most speakers - 1 dimensions) after removing the
          training-set mean, and writes the projected vectors, which stage 5 scores by cosine;
  plda    the system writes its vectors as they are (no LDA), and stage 5 scores them with
          steps/score_plda.sh (training-set mean, LDA, length normalisation, PLDA:
          pytorch_modules/scoring/plda.py), trained on the training set's vectors, which
          every system also writes.

Features: `cmn_window` frames of Kaldi's sliding cepstral mean normalisation (0: none) on the
voiced frames, per system.  Every random choice (the frames a UBM is fitted on, its
initialisation, T's initialisation) is a function of the system's seed.
"""
import dataclasses
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import yaml
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from pytorch_modules.errors import RecipeError
from pytorch_modules.features.mfcc import sliding_mean_normalise

SYSTEMS = ("mfcc_stats_lda", "gmm_ubm", "ivector")
BACKENDS = ("cosine", "plda")
DEFAULT_SETTINGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "conf", "classical.yaml")
# The fewest training frames per UBM Gaussian; with fewer frames the UBM is made smaller.
MIN_FRAMES_PER_GAUSS = 10
# Utterances per vectorised step of the i-vector EM and extraction, and frames per step of
# the Baum-Welch statistics (the posteriors of 50,000 frames of 512 Gaussians: 200 MB).
IVECTOR_CHUNK = 128
STATS_CHUNK_FRAMES = 50_000
# Training utterances whose supervectors the gmm_ubm PCA is fitted on (a seeded random subset
# when there are more): 20,000 supervectors of 512 x 72 float32 are 3 GB.
PCA_MAX_UTTS = 20_000
# Added to the UBM variances (scikit-learn's reg_covar): keeps a variance from collapsing on
# a cluster of identical frames (digital silence).
REG_COVAR = 1e-3


# ---- settings -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatsSettings:
    backend: str
    lda_dim: int            # cosine back-end's LDA (capped at speakers - 1)
    cmn_window: int
    seed: int


@dataclass(frozen=True)
class GmmUbmSettings:
    backend: str
    num_gauss: int          # UBM components
    ubm_frames: int         # training frames the UBM is fitted on (a random subset)
    ubm_iterations: int     # EM iterations of the UBM
    relevance: float        # MAP relevance factor
    pca_dim: int            # supervector PCA (capped by the data)
    lda_dim: int
    cmn_window: int
    seed: int


@dataclass(frozen=True)
class IvectorSettings:
    backend: str
    num_gauss: int
    full_covariance: bool   # full-covariance UBM (Kaldi's) or the diagonal one
    ubm_frames: int
    ubm_iterations: int     # diagonal EM iterations (train_diag_ubm.sh)
    # full-covariance EM iterations from the diagonal UBM (train_full_ubm.sh)
    full_ubm_iterations: int
    ivector_dim: int
    tv_iterations: int      # EM iterations of the total-variability matrix
    tv_utts: int            # training utterances T is trained on (a random subset when more)
    lda_dim: int
    cmn_window: int
    seed: int


SETTINGS = {"mfcc_stats_lda": StatsSettings, "gmm_ubm": GmmUbmSettings,
            "ivector": IvectorSettings}


def _check_value(path, system, field, value):
    where = f"{path}: {system}.{field.name}"
    if field.type in (int, "int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{where} takes a whole number, not {value!r}")
        low = 0 if field.name in ("cmn_window", "seed") else 1
        if value < low:
            raise RecipeError(f"{where} takes {low} or more, not {value}")
    elif field.type in (float, "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise RecipeError(f"{where} takes a number above 0, not {value!r}")
        value = float(value)
    elif field.type in (bool, "bool"):
        if not isinstance(value, bool):
            raise RecipeError(f"{where} takes true or false, not {value!r}")
    elif field.name == "backend" and value not in BACKENDS:
        raise RecipeError(f"{where} takes {' or '.join(BACKENDS)}, not {value!r}")
    return value


def load_settings(path=DEFAULT_SETTINGS) -> dict:
    """{system: its settings} from a YAML file of one mapping per system (conf/classical.yaml);
    every key of a system must be there, and nothing else."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise RecipeError(f"cannot read the classical baselines' settings {path}: "
                          f"{e.strerror}") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected one section per system ({', '.join(SYSTEMS)})")
    unknown = sorted(set(data) - set(SYSTEMS))
    if unknown:
        raise RecipeError(f"{path}: unknown system '{unknown[0]}' (the systems: "
                          f"{', '.join(SYSTEMS)})")
    settings = {}
    for system, cls in SETTINGS.items():
        section = data.get(system)
        if not isinstance(section, dict):
            raise RecipeError(f"{path}: no section for {system}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in section:
            if key not in fields:
                raise RecipeError(f"{path}: unknown key {system}.{key} (the keys: "
                                  f"{', '.join(fields)})")
        missing = [name for name in fields if name not in section]
        if missing:
            raise RecipeError(f"{path}: {system}.{missing[0]} is missing; every setting of "
                              f"a system is written out")
        settings[system] = cls(**{name: _check_value(path, system, field, section[name])
                                  for name, field in fields.items()})
    return settings


def describe(settings) -> str:
    """One line of `key=value` (what the restart check of run_classical_baselines.sh hashes)."""
    return " ".join(f"{k}={v}" for k, v in dataclasses.asdict(settings).items())


# ---- shared pieces ------------------------------------------------------------------------------

def utterance_stats(frames: np.ndarray) -> np.ndarray:
    """[mean, standard deviation] of the frames, per dimension."""
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])


def frame_sample(feats, total: int, seed: int) -> np.ndarray:
    """About `total` frames drawn evenly from every utterance (all of them when fewer); `feats`
    is read twice (to count, then to draw)."""
    count = sum(len(f) for f in feats)
    rng = np.random.default_rng(seed)
    if count <= total:
        return np.concatenate(list(feats))
    keep = total / count
    return np.concatenate([f[rng.random(len(f)) < keep] for f in feats])


def ubm_size(num_frames: int, num_gauss: int, log=print) -> int:
    """num_gauss, or fewer where the training frames cannot fit that many (at least
    MIN_FRAMES_PER_GAUSS frames each), with a note."""
    if num_frames < 2 * MIN_FRAMES_PER_GAUSS:
        raise RecipeError(f"a UBM needs at least {2 * MIN_FRAMES_PER_GAUSS} training frames, "
                          f"got {num_frames}; give the classical baselines more training data")
    size = min(num_gauss, num_frames // MIN_FRAMES_PER_GAUSS)
    if size < num_gauss:
        log(f"note: {num_frames} training frames fit a UBM of {size} Gaussians, not "
            f"{num_gauss} (at least {MIN_FRAMES_PER_GAUSS} frames each)")
    return size


def fit_ubm(frames: np.ndarray, num_gauss: int, iterations: int, seed: int,
            full_iterations: int = 0) -> GaussianMixture:
    """A diagonal-covariance GMM (`iterations` EM iterations), then, with full_iterations > 0,
    that many full-covariance EM iterations started from it.  The start is k-means++ seeding
    (means at frames drawn apart, no k-means iterations): single-threaded, so the UBM is the
    same whatever the number of cores (scikit-learn's full k-means start is threaded and
    gave different UBMs on different machines), and far cheaper for hundreds of Gaussians;
    the EM iterations do the fitting."""
    if len(frames) < MIN_FRAMES_PER_GAUSS * num_gauss:
        raise RecipeError(f"the UBM of {num_gauss} Gaussians needs at least "
                          f"{MIN_FRAMES_PER_GAUSS * num_gauss} training frames, got "
                          f"{len(frames)}; use fewer Gaussians (num_gauss in "
                          f"conf/classical.yaml) or more training data")
    with warnings.catch_warnings():
        # A fixed number of EM iterations, as Kaldi's recipes run them, not convergence.
        warnings.simplefilter("ignore", ConvergenceWarning)
        ubm = GaussianMixture(num_gauss, covariance_type="diag", max_iter=iterations,
                              reg_covar=REG_COVAR, random_state=seed,
                              init_params="k-means++").fit(frames)
        if full_iterations == 0:
            return ubm
        dim = frames.shape[1]
        precisions = (1.0 / ubm.covariances_)[:, :, None] * np.eye(dim)
        return GaussianMixture(num_gauss, covariance_type="full", max_iter=full_iterations,
                               reg_covar=REG_COVAR, random_state=seed,
                               weights_init=ubm.weights_, means_init=ubm.means_,
                               precisions_init=precisions).fit(frames)


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


def fit_projection(vectors: np.ndarray, speakers: list, lda_dim: int, seed: int = 0,
                   pca_dim=None) -> Projection:
    """Centre, reduce to pca_dim dimensions (None: none), and LDA on the training speakers."""
    num_speakers = len(set(speakers))
    if num_speakers < 2:
        raise RecipeError("an LDA needs at least 2 training speakers")
    mean = vectors.mean(axis=0)
    x = vectors - mean
    pca = None
    if pca_dim is not None:
        pca = PCA(min(pca_dim, len(x) - 1, x.shape[1]), random_state=seed).fit(x)
        x = pca.transform(x)
    lda = LinearDiscriminantAnalysis(n_components=min(lda_dim, num_speakers - 1, x.shape[1]),
                                     solver="eigen", shrinkage="auto").fit(x, speakers)
    return Projection(mean, pca, lda)


# ---- i-vectors ----------------------------------------------------------------------------------

def whitening(ubm: GaussianMixture) -> np.ndarray:
    """(C, D, D): for each Gaussian a matrix P_c with P_c Sigma_c P_c' = I."""
    if ubm.covariance_type == "full":
        # scikit-learn keeps U_c with Sigma_c^-1 = U_c U_c' (upper triangular): U_c' whitens.
        return np.transpose(ubm.precisions_cholesky_, (0, 2, 1))
    dim = ubm.means_.shape[1]
    return np.sqrt(1.0 / ubm.covariances_)[:, :, None] * np.eye(dim)


def baum_welch_stats(feats, ubm: GaussianMixture):
    """Per utterance the zeroth-order statistics N_c = sum_t gamma_tc (float64, (U, C)) and the
    first-order statistics centred on the UBM means and whitened by their covariances,
    F_c = P_c sum_t gamma_tc (x_t - mu_c) (float32, (U, C, D)).  Each utterance of `feats`
    is read once; posteriors are computed STATS_CHUNK_FRAMES frames at a time."""
    num_gauss, dim = ubm.means_.shape
    white = whitening(ubm)
    zeroth = np.zeros((len(feats), num_gauss))
    first = np.zeros((len(feats), num_gauss, dim), dtype=np.float32)

    def flush(rows, frames):
        x = np.concatenate(frames)
        posteriors = ubm.predict_proba(x)
        bounds = np.cumsum([0] + [len(f) for f in frames])
        for k, utt in enumerate(rows):
            gamma = posteriors[bounds[k]:bounds[k + 1]]
            zeroth[utt] = gamma.sum(axis=0)
            centred = gamma.T @ x[bounds[k]:bounds[k + 1]] - zeroth[utt][:, None] * ubm.means_
            first[utt] = np.einsum("cde,ce->cd", white, centred)

    rows, frames, count = [], [], 0
    for utt in range(len(feats)):
        f = np.asarray(feats[utt], dtype=np.float64)
        if frames and count + len(f) > STATS_CHUNK_FRAMES:
            flush(rows, frames)
            rows, frames, count = [], [], 0
        rows.append(utt)
        frames.append(f)
        count += len(f)
    if frames:
        flush(rows, frames)
    return zeroth, first


class TotalVariability:
    """The i-vector model on whitened statistics (Dehak et al. 2011, Kenny's eigenvoice EM;
    Kaldi's ivector-extractor-est): the supervector of an utterance is m + b + T w with
    w ~ N(0, I), in the space where every UBM covariance is unit (the covariances are the
    UBM's and stay fixed), T of shape (C, D, R), b a bias that minimum-divergence
    re-estimation moves the prior's mean into.  For an utterance with statistics N, F:

        L = I + sum_c N_c T_c' T_c,   posterior of w: N(L^-1 sum_c T_c' (F_c - N_c b_c), L^-1)

    The M-step solves T_c (sum_u N_uc E[w w']) = sum_u (F_uc - N_uc b_c) E[w]'; minimum
    divergence (Kaldi's prior update, Kenny 2008) then maps the posteriors' mean h and
    covariance S over the training utterances to N(0, I): b += T h, T <- T chol(S)."""

    def __init__(self, num_gauss, dim, ivector_dim, seed=0):
        # T's start: random, scaled so that T w has about unit variance per dimension
        # before the first EM step, like the whitened statistics.
        rng = np.random.default_rng(seed)
        self.t = rng.normal(size=(num_gauss, dim, ivector_dim)) / np.sqrt(ivector_dim)
        self.bias = np.zeros((num_gauss, dim))

    @property
    def ivector_dim(self):
        return self.t.shape[2]

    def _precision_terms(self):
        c, _, r = self.t.shape
        return np.einsum("cdr,cds->crs", self.t, self.t).reshape(c, r * r)

    def _posterior(self, zeroth, first, tt, covariance):
        """(posterior means (u, R), their covariances (u, R, R) or None, centred F (u, C*D))."""
        r = self.ivector_dim
        centred = (first - zeroth[:, :, None] * self.bias).reshape(len(zeroth), -1)
        precision = (zeroth @ tt).reshape(-1, r, r) + np.eye(r)
        linear = centred @ self.t.reshape(-1, r)
        if not covariance:
            return np.linalg.solve(precision, linear[:, :, None])[:, :, 0], None, centred
        cov = np.linalg.inv(precision)
        return np.einsum("urs,us->ur", cov, linear), cov, centred

    def train(self, zeroth, first, iterations, log=print):
        c, d, r = self.t.shape
        for iteration in range(iterations):
            tt = self._precision_terms()
            a = np.zeros((c, r * r))
            b = np.zeros((c * d, r))
            mean, second = np.zeros(r), np.zeros((r, r))
            for start in range(0, len(zeroth), IVECTOR_CHUNK):
                n = zeroth[start:start + IVECTOR_CHUNK]
                w, cov, centred = self._posterior(n, first[start:start + IVECTOR_CHUNK]
                                                  .astype(np.float64), tt, covariance=True)
                outer = cov + w[:, :, None] * w[:, None, :]
                a += n.T @ outer.reshape(len(n), -1)
                b += centred.T @ w
                mean += w.sum(axis=0)
                second += outer.sum(axis=0)
            a = a.reshape(c, r, r)
            self.t = np.linalg.solve(a, b.reshape(c, d, r).transpose(0, 2, 1)).transpose(0, 2, 1)
            h = mean / len(zeroth)
            s = second / len(zeroth) - np.outer(h, h)
            self.bias = self.bias + self.t @ h
            self.t = self.t @ np.linalg.cholesky(0.5 * (s + s.T))
            log(f"total variability: iteration {iteration + 1}/{iterations}, i-vector "
                f"posterior mean norm {np.linalg.norm(h):.3f}, average variance "
                f"{np.trace(s) / r:.3f}")

    def extract(self, zeroth, first) -> np.ndarray:
        """The i-vectors: posterior means of w, (U, R) float32."""
        tt = self._precision_terms()
        return np.concatenate([
            self._posterior(zeroth[s:s + IVECTOR_CHUNK],
                            first[s:s + IVECTOR_CHUNK].astype(np.float64), tt, False)[0]
            for s in range(0, len(zeroth), IVECTOR_CHUNK)]).astype(np.float32)


# ---- the systems --------------------------------------------------------------------------------

class Normalised(Sequence):
    """The utterances of `feats` (a sequence of frame matrices, read when indexed) with
    sliding CMN of `window` frames (0: as they are), as float64."""

    def __init__(self, feats, window):
        self.feats, self.window = feats, window

    def __len__(self):
        return len(self.feats)

    def __getitem__(self, index):
        frames = np.asarray(self.feats[index], dtype=np.float64)
        return sliding_mean_normalise(frames, self.window) if self.window else frames


def _subset(count, limit, seed):
    """Sorted indices of a seeded random subset of `limit` of range(count) (all when fewer)."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def _chunks(count, size):
    return (range(start, min(start + size, count)) for start in range(0, count, size))


def train_and_embed(system: str, train_feats, train_speakers: list, eval_feats: dict,
                    settings, log=print) -> dict:
    """Trains `system` on the training utterances' MFCC frames and returns {set: (n, dim)
    float32 vectors} for each evaluation set, and under the key None the training utterances'
    own vectors (what a PLDA back-end is trained on).  The sets are sequences of frame
    matrices (lists, or sequences that read each utterance when it is indexed: only the UBM's
    frame sample, and for i-vectors the statistics of tv_utts utterances, are held in memory).
    With backend cosine the vectors are LDA-projected (module doc)."""
    if system not in SYSTEMS:
        raise RecipeError(f"unknown classical system '{system}' (choose one of "
                          f"{', '.join(SYSTEMS)})")
    o = settings
    sets = {None: Normalised(train_feats, o.cmn_window),
            **{name: Normalised(feats, o.cmn_window) for name, feats in eval_feats.items()}}
    if system == "mfcc_stats_lda":
        vectors = {name: np.stack([utterance_stats(f) for f in feats])
                   for name, feats in sets.items()}
    elif system == "gmm_ubm":
        vectors, _ = _supervectors(sets, o, log)
    else:
        vectors = _ivectors(sets, o, log)
    if o.backend == "plda":
        return {name: v.astype(np.float32) for name, v in vectors.items()}
    project = fit_projection(vectors[None], train_speakers, o.lda_dim, o.seed)
    return {name: project(v) for name, v in vectors.items()}


def _ubm_frames(train, o, log):
    frames = frame_sample(train, o.ubm_frames, o.seed)
    return frames, ubm_size(len(frames), o.num_gauss, log)


def _supervectors(sets, o: GmmUbmSettings, log):
    """{set: PCA-reduced supervectors} and the PCA: fitted on the centred supervectors of (at
    most PCA_MAX_UTTS) training utterances, applied to every utterance a chunk at a time."""
    frames, size = _ubm_frames(sets[None], o, log)
    log(f"fitting a {size}-Gaussian diagonal UBM on {len(frames)} frames, "
        f"{o.ubm_iterations} EM iterations")
    ubm = fit_ubm(frames, size, o.ubm_iterations, o.seed)
    del frames
    sv = lambda feats, rows: np.stack([supervector(feats[i], ubm, o.relevance)
                                       for i in rows]).astype(np.float32)
    fit_rows = _subset(len(sets[None]), PCA_MAX_UTTS, o.seed)
    train = sv(sets[None], fit_rows)
    mean = train.mean(axis=0)
    pca = PCA(min(o.pca_dim, len(train) - 1, train.shape[1]), random_state=o.seed).fit(
        train - mean)
    log(f"supervector PCA to {pca.n_components_} dimensions ({len(train)} training utterances)")
    del train
    vectors = {name: np.concatenate([pca.transform(sv(feats, rows) - mean)
                                     for rows in _chunks(len(feats), 1000)])
               for name, feats in sets.items()}
    return vectors, pca


def _ivectors(sets, o: IvectorSettings, log):
    frames, size = _ubm_frames(sets[None], o, log)
    full = o.full_ubm_iterations if o.full_covariance else 0
    log(f"fitting a {size}-Gaussian UBM on {len(frames)} frames: {o.ubm_iterations} diagonal "
        f"EM iterations" + (f", then {full} full-covariance ones" if full else ""))
    ubm = fit_ubm(frames, size, o.ubm_iterations, o.seed, full)
    model = TotalVariability(size, frames.shape[1], o.ivector_dim, o.seed)
    del frames
    rows = _subset(len(sets[None]), o.tv_utts, o.seed)
    zeroth, first = baum_welch_stats(_Rows(sets[None], rows), ubm)
    log(f"total variability: {o.ivector_dim}-d, trained on the statistics of {len(rows)} "
        f"training utterances")
    model.train(zeroth, first, o.tv_iterations, log)
    del zeroth, first
    vectors = {}
    for name, feats in sets.items():
        parts = []
        for chunk in _chunks(len(feats), 1000):
            parts.append(model.extract(*baum_welch_stats(_Rows(feats, chunk), ubm)))
        vectors[name] = np.concatenate(parts)
    return vectors


class _Rows(Sequence):
    """feats[rows], read when indexed."""

    def __init__(self, feats, rows):
        self.feats, self.rows = feats, list(rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.feats[self.rows[index]]
