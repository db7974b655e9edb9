"""PLDA back-end: training-set mean subtraction, LDA, length normalisation and a two-covariance
PLDA scored by the log-likelihood ratio, as Kaldi's egs/voxceleb/v2 (stages 9-10) computes it
with ivector-mean, ivector-compute-lda, ivector-normalize-length, ivector-compute-plda and
ivector-plda-scoring (Kaldi's code was read for what it computes; none of it is copied here).

Pipeline of an embedding x (fitted on the training speakers' embeddings):

  1. x - m, m the training-set mean (`subtract_mean`; ivector-subtract-global-mean).
  2. LDA to `lda_dim` dimensions (ivector-compute-lda --total-covariance-factor=0): the scatter
     matrices of the centred training vectors, utterance-weighted (total T = X'X / N, between
     B = sum_s n_s m_s m_s' / N, within W = T - B); the projection makes W unit (eigenvalues of
     W floored at 1e-6 of the largest) and keeps the directions of largest between-speaker
     variance.  Capped here at speakers - 1 (the between-speaker scatter has no other
     directions) and at the input dimension; 0 means no LDA.
  3. Length normalisation to norm sqrt(dim) (ivector-normalize-length).
  4. PLDA (two-covariance model, Ioffe 2006 as Kaldi writes it): x = mu + y + e, speaker
     variable y ~ N(0, B), utterance noise e ~ N(0, W).  Fitted by Kaldi's EM (`em_iters`,
     from B = W = I): sufficient statistics are each speaker's mean and count and the
     within-speaker scatter; mu is the mean of the speaker means.  Its output is the transform
     A that makes W unit and B diagonal (psi, sorted): u = A (x - mu).
  5. Scoring (ivector-plda-scoring --normalize-length=true): u is scaled so that
     u' (psi + 1/n)^-1 u = dim, n the number of utterances averaged into it (1 for a test
     utterance), then

       LLR = log N(u_t; n psi / (n psi + 1) u_e, 1 + psi / (n psi + 1))
             - log N(u_t; 0, 1 + psi)                      (diagonal Gaussians)

     which is log p(enroll, test | same speaker) - log p(enroll) p(test).

An enrollment model of several utterances (SITW) is the plain mean of their raw embeddings
(ivector-mean with spk2utt, before steps 1-3) and enters step 5 with n = its utterance count
(--num-utts of ivector-plda-scoring), as Kaldi's sitw/v2 recipe scores it.
"""
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from pytorch_modules.errors import RecipeError

DEFAULT_LDA_DIM = 200
DEFAULT_EM_ITERS = 10
# ivector-compute-lda's --covariance-floor: eigenvalues of the within-class covariance below
# this fraction of the largest are raised to it before the normalising transform.
LDA_COVARIANCE_FLOOR = 1e-6
# Trials scored per vectorised step (each gathers two (chunk, dim) float64 blocks).
SCORE_CHUNK = 65536


@dataclass
class PldaOptions:
    lda_dim: int = DEFAULT_LDA_DIM        # 0: no LDA
    subtract_mean: bool = True
    em_iters: int = DEFAULT_EM_ITERS


def _labels_to_index(labels):
    """(class index per row, number of classes) of a label list."""
    names, index = np.unique(np.asarray(labels), return_inverse=True)
    return index.astype(np.int64), len(names)


def class_means(x, index, num_classes):
    """(means (classes, dim), counts (classes,)) of the rows of x grouped by index."""
    counts = np.bincount(index, minlength=num_classes).astype(np.float64)
    onehot = sparse.csr_matrix((np.ones(len(index)), (index, np.arange(len(index)))),
                               shape=(num_classes, len(index)))
    return np.asarray(onehot @ x) / counts[:, None], counts


def _symmetric(m):
    return 0.5 * (m + m.T)


# ---- LDA ----------------------------------------------------------------------------------------

def lda_transform(x, labels, dim, floor=LDA_COVARIANCE_FLOOR):
    """The (dim, D) LDA projection of step 2 (see the module doc) from training vectors x
    (N, D) and their speaker labels; x is centred here for the statistics."""
    x = np.asarray(x, dtype=np.float64)
    index, num_classes = _labels_to_index(labels)
    if len(x) <= num_classes:
        raise RecipeError(f"an LDA needs more training utterances than speakers (got "
                          f"{len(x)} utterances of {num_classes} speakers)")
    x = x - x.mean(axis=0)
    means, counts = class_means(x, index, num_classes)
    total = x.T @ x / len(x)
    between = (means.T * counts) @ means / len(x)
    within = total - between
    s, u = np.linalg.eigh(_symmetric(within))
    s = np.maximum(s, floor * s.max())
    normalise = (u / np.sqrt(s)).T                      # normalise @ within @ normalise.T = I
    b, v = np.linalg.eigh(_symmetric(normalise @ between @ normalise.T))
    order = np.argsort(b)[::-1][:dim]
    return v[:, order].T @ normalise


def length_normalise(x):
    """Rows scaled to norm sqrt(dim) (ivector-normalize-length); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x * (np.sqrt(x.shape[1]) / np.maximum(norms, 1e-30))


# ---- the two-covariance PLDA ---------------------------------------------------------------------

@dataclass
class PldaStats:
    """What the EM needs of the training vectors: speaker means about the global mean (the mean
    of the speaker means), their utterance counts, and the within-speaker scatter."""
    mean: np.ndarray
    means: np.ndarray          # (speakers, dim), global mean removed
    counts: np.ndarray         # (speakers,)
    scatter: np.ndarray        # sum over utterances of (x - speaker mean)(x - speaker mean)'

    @classmethod
    def of(cls, x, labels):
        x = np.asarray(x, dtype=np.float64)
        index, num_classes = _labels_to_index(labels)
        means, counts = class_means(x, index, num_classes)
        offsets = x - means[index]
        mean = means.mean(axis=0)
        return cls(mean, means - mean, counts, offsets.T @ offsets)

    @property
    def num_utts(self):
        return float(self.counts.sum())


def em_iteration(stats: PldaStats, between, within):
    """One EM step of the two-covariance model; returns the new (between, within).  For a
    speaker of n utterances with mean m, the speaker variable given m is Gaussian with
    covariance V = (B^-1 + n W^-1)^-1 and mean w = V n W^-1 m; B is re-estimated from
    E[y y'] = V + w w' over the speakers, W from the within-speaker scatter plus
    n (V + (m - w)(m - w)') per speaker, over all utterances."""
    dim = len(between)
    between_inv, within_inv = np.linalg.inv(between), np.linalg.inv(within)
    between_stats, within_stats = np.zeros((dim, dim)), stats.scatter.copy()
    for n in np.unique(stats.counts):
        rows = stats.counts == n
        m = stats.means[rows]
        v = np.linalg.inv(_symmetric(between_inv + n * within_inv))
        w = m @ (n * within_inv) @ v
        k = rows.sum()
        between_stats += k * v + w.T @ w
        within_stats += n * k * v + n * (m - w).T @ (m - w)
    return (_symmetric(between_stats / len(stats.counts)),
            _symmetric(within_stats / stats.num_utts))


def log_likelihood(stats: PldaStats, between, within):
    """The training data's log-likelihood per utterance under (B, W) (up to a constant), as
    Kaldi's PldaEstimator::ComputeObjf: the within-speaker contrasts (N - S of them) ~ N(0, W)
    and each speaker mean ~ N(0, B + W / n).  EM never decreases it."""
    dim = len(between)
    sign, logdet_w = np.linalg.slogdet(within)
    within_count = stats.num_utts - len(stats.counts)
    total = -0.5 * (within_count * (logdet_w + dim * np.log(2 * np.pi))
                    + np.trace(np.linalg.solve(within, stats.scatter)))
    for n in np.unique(stats.counts):
        m = stats.means[stats.counts == n]
        cov = between + within / n
        _, logdet = np.linalg.slogdet(cov)
        quad = np.einsum("ij,ij->", m, np.linalg.solve(cov, m.T).T)
        total += -0.5 * (len(m) * (logdet + dim * np.log(2 * np.pi)) + quad)
    return total / stats.num_utts


class Plda:
    """A fitted two-covariance PLDA: mean mu, between B and within W, and the transform A
    (A W A' = I, A B A' = diag(psi), psi descending) that scoring works in."""

    def __init__(self, mean, between, within):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.between = np.asarray(between, dtype=np.float64)
        self.within = np.asarray(within, dtype=np.float64)
        chol = np.linalg.cholesky(self.within)               # W = C C'
        c_inv = np.linalg.inv(chol)
        s, u = np.linalg.eigh(_symmetric(c_inv @ self.between @ c_inv.T))
        order = np.argsort(s)[::-1]
        self.psi = np.maximum(s[order], 0.0)
        self.transform = u[:, order].T @ c_inv

    @classmethod
    def fit(cls, x, labels, em_iters=DEFAULT_EM_ITERS, history=None):
        """EM from B = W = I (Kaldi's start), `em_iters` iterations; `history`, a list, gets
        the log-likelihood per utterance after each iteration."""
        stats = PldaStats.of(x, labels)
        dim = stats.means.shape[1]
        if len(stats.counts) < 2:
            raise RecipeError("a PLDA needs at least 2 training speakers")
        between, within = np.eye(dim), np.eye(dim)
        for _ in range(em_iters):
            between, within = em_iteration(stats, between, within)
            if history is not None:
                history.append(log_likelihood(stats, between, within))
        return cls(stats.mean, between, within)

    def transform_vectors(self, x, counts=1, normalise_length=True):
        """u = A (x - mu), each row scaled so that u' (psi + 1/n)^-1 u = dim when
        normalise_length (n: `counts`, the utterances averaged into the row)."""
        u = (np.asarray(x, dtype=np.float64) - self.mean) @ self.transform.T
        if normalise_length:
            n = np.broadcast_to(np.asarray(counts, dtype=np.float64), (len(u),))[:, None]
            quad = np.sum(u * u / (self.psi + 1.0 / n), axis=1, keepdims=True)
            u = u * np.sqrt(len(self.psi) / np.maximum(quad, 1e-300))
        return u

    def llr(self, enroll, counts, test):
        """Row-wise log-likelihood ratios of transformed enrollment rows (each the mean of
        `counts` utterances) against transformed test rows (one utterance each)."""
        enroll, test = np.atleast_2d(enroll), np.atleast_2d(test)
        n = np.broadcast_to(np.asarray(counts, dtype=np.float64), (len(enroll),))[:, None]
        psi = self.psi
        mean = n * psi / (n * psi + 1.0) * enroll
        var = 1.0 + psi / (n * psi + 1.0)
        given = -0.5 * (np.log(var).sum(axis=1) + np.sum((test - mean) ** 2 / var, axis=1))
        without = -0.5 * (np.log(1.0 + psi).sum() + np.sum(test ** 2 / (1.0 + psi), axis=1))
        return given - without


# ---- the whole back-end -------------------------------------------------------------------------

@dataclass
class PldaBackend:
    """Steps 1-5 of the module doc, fitted on training embeddings."""
    mean: np.ndarray | None      # subtracted before the LDA (None: --subtract-mean false)
    lda: np.ndarray | None       # (lda_dim, D) or None
    plda: Plda
    options: PldaOptions

    @classmethod
    def fit(cls, x, labels, options: PldaOptions = PldaOptions(), log=None):
        x = np.asarray(x, dtype=np.float64)
        num_speakers = len(set(labels))
        if num_speakers < 2:
            raise RecipeError("a PLDA back-end needs at least 2 training speakers")
        mean = x.mean(axis=0) if options.subtract_mean else None
        lda = None
        if options.lda_dim > 0:
            dim = min(options.lda_dim, num_speakers - 1, x.shape[1])
            if dim < options.lda_dim and log:
                cause = ("the embeddings have" if dim == x.shape[1]
                         else "the training speakers span")
                log(f"LDA to {dim} dimensions, not {options.lda_dim}: {cause} only {dim}")
            lda = lda_transform(x, labels, dim)
        backend = cls(mean, lda, None, options)
        backend.plda = Plda.fit(backend.project(x), labels, options.em_iters)
        return backend

    @property
    def dim(self):
        return len(self.plda.psi)

    def project(self, x):
        """Steps 1-3: mean subtraction, LDA, length normalisation."""
        x = np.asarray(x, dtype=np.float64)
        if self.mean is not None:
            x = x - self.mean
        if self.lda is not None:
            x = x @ self.lda.T
        return length_normalise(x)

    def prepare(self, x, counts=1):
        """Steps 1-4 and the length scaling of step 5: the vectors that `llr` scores."""
        return self.plda.transform_vectors(self.project(x), counts)

    def score(self, prepared, counts, enroll_rows, test_rows):
        """LLR of each trial (enroll_rows[i], test_rows[i]) of prepared rows; counts[r] is the
        number of utterances of row r (used for the enrollment side)."""
        counts = np.asarray(counts, dtype=np.float64)
        scores = np.empty(len(enroll_rows))
        for start in range(0, len(enroll_rows), SCORE_CHUNK):
            e = enroll_rows[start:start + SCORE_CHUNK]
            t = test_rows[start:start + SCORE_CHUNK]
            scores[start:start + len(e)] = self.plda.llr(prepared[e], counts[e], prepared[t])
        return scores
