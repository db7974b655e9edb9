"""Score calibration: scores -> log-likelihood ratios (LLRs) by logistic regression, optionally
with quality measures of the two sides (a quality measure function, QMF), fitted on a trial
list made from the training speakers.

A cosine of 0.56 means one thing for one model and another for the next; a calibrated LLR
means the same for every model, so that one Bayes threshold, -logit(p_target) with unit costs,
is the right decision for a stated target prior (metrics.py: actual DCF, Cllr).

The calibration list (make_trials): target and nontarget pairs of training utterances with
embeddings, drawn with a seed.  Defaults (pytorch_modules.bin.make_calibration_trials):
20,000 trials, half of them targets.
  * Half targets: with the default prior (the list's target share) the fit is then at prior
    0.5, where its objective is exactly Cllr (the prior-weighted cross-entropy at 0.5), the
    application-independent figure the results report; the LLR then serves any p_target
    through the Bayes threshold.  VoxCeleb's trial lists are half targets too.
  * 10,000 of each class: the fit has 2 to 6 parameters; the standard error of its offset is
    about sqrt(1/N_tar + 1/N_non), some 0.015 nats, far below the tenths of a nat that move
    an actual DCF, and 10,000 nontargets resolve false-alarm rates of 1e-4, below those at
    the p_target 0.001 threshold.  Scoring 20,000 trials costs a fraction of a second.
  * Speaker-balanced: every speaker gives an equal share of the targets (as far as its pairs
    allow) and speakers are drawn uniformly for the nontargets, so that the few speakers with
    most utterances (pairs grow with their square) do not dominate.
  * Cross-session targets (default): VoxCeleb's trial lists pair different videos as targets
    (ids speaker-video-number, as stage 1 makes them); same-video pairs share the channel and
    score higher, and would teach the calibration too confident a target distribution.
  Where a corpus holds fewer such target pairs, all of them are taken and the nontargets cut
  to keep the target share (a note says so).
The training speakers are the ones the network learnt to separate, so their scores separate
better than unseen speakers' do: a calibration fitted on them is somewhat over-confident.

Quality measures (QMF: Thienpondt et al. 2021, "The IDLAB VoxSRC-20 submission"; WeSpeaker's
examples/voxceleb/v2 score calibration): per trial, of the two sides' values, the smaller and the
larger (a cosine or AS-norm score is symmetric in its sides, and which side a list calls
enrollment is arbitrary):
  duration     log of the number of feature frames (utt2num_frames, as the feature stage
               counts them before any padding; an enrollment model: the sum over its
               utterances): log_frames_min, log_frames_max
  cohort_mean  the mean of the side's top-N cosine scores against the AS-norm cohort, computed
               exactly as AS-norm computes mu (scoring/asnorm.py; mean subtraction included):
               cohort_mean_min, cohort_mean_max
The calibration is llr = offset + scale * score + sum_i weight_i * measure_i.

Fitting (BOSARIS's train_linear_calibration, Bruemmer): minimise the prior-weighted
cross-entropy  prior * mean_tar log(1 + e^-(l + logit prior)) + (1 - prior) * mean_non
log(1 + e^(l + logit prior))  over the affine map l; done with scikit-learn's unpenalised
LogisticRegression, each target weighted prior / N_tar and each nontarget (1 - prior) / N_non
(on standardised inputs, mapped back), whose log-odds minus logit(prior) is the LLR.

The calibration file (`key value` lines, never pickle; write/read): offset, scale, measures,
weight_<measure>, prior, backend (cosine or asnorm: the score it takes), and what verify needs
to compute the score and measures of two recordings (mean_scp, cohort_scp, top_n), then where
it was fitted.  exp/<model>/final.calibration beside final.pt is the one
pytorch_modules.bin.verify uses.
"""
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio import sidecar
from pytorch_modules.fileio.kaldi_data import read_scp_lines

CALIBRATION_SUFFIX = ".calibration"
DEFAULT_NUM_TRIALS = 20000
DEFAULT_TARGET_SHARE = 0.5
DEFAULT_SEED = 1
# Quality measure groups (--quality-measures) and the trial features each gives.
MEASURE_GROUPS = {"duration": ("log_frames_min", "log_frames_max"),
                  "cohort_mean": ("cohort_mean_min", "cohort_mean_max")}
BACKENDS = ("cosine", "asnorm")


def logit(p):
    return math.log(p) - math.log1p(-p)


# ---- the calibration trial list -----------------------------------------------------------------

def session_of(utt):
    """The session of a VoxCeleb-style id speaker-session-number (stage 1's ids): the id
    without its last '-' field; None when it has no '-'."""
    head, sep, _ = utt.rpartition("-")
    return head if sep else None


def _quotas(available, total, rng):
    """Targets per speaker: equal shares of `total`, a speaker with fewer pairs giving all
    of its own, the remainder to speakers drawn at random."""
    quotas = np.zeros(len(available), dtype=np.int64)
    remaining = total
    open_ = [s for s, a in enumerate(available) if a > 0]
    while remaining > 0 and open_:
        share = remaining // len(open_)
        if share == 0:
            for s in rng.choice(open_, remaining, replace=False):
                quotas[s] += 1
            break
        for s in open_:
            give = min(share, available[s] - quotas[s])
            quotas[s] += give
            remaining -= give
        open_ = [s for s in open_ if quotas[s] < available[s]]
    return quotas


def make_trials(utt2spk, num_trials=DEFAULT_NUM_TRIALS, target_share=DEFAULT_TARGET_SHARE,
                seed=DEFAULT_SEED, cross_session=True):
    """A seeded calibration list from [(utt, speaker)] (module doc).

    Returns (trials: [(enroll, test, 'target'|'nontarget')] in C order, info: dict of
    `key value` strings, notes: [sentences])."""
    if not 0 < target_share < 1:
        raise RecipeError(f"the target share must lie strictly between 0 and 1; got "
                          f"{target_share}.")
    if num_trials < 2:
        raise RecipeError(f"a calibration list needs at least 2 trials; got {num_trials}.")
    rng = np.random.default_rng(seed)
    by_speaker = {}
    for utt, spk in utt2spk:
        by_speaker.setdefault(spk, []).append(utt)
    speakers = sorted(by_speaker)
    if len(speakers) < 2:
        raise RecipeError(f"the calibration list needs at least 2 speakers; the data holds "
                          f"{len(speakers)}.")
    utts = [sorted(by_speaker[s]) for s in speakers]
    if cross_session:
        no_session = next((u for us in utts for u in us if session_of(u) is None), None)
        if no_session is not None:
            raise RecipeError(f"utterance {no_session} has no session in its id (VoxCeleb "
                              f"ids are speaker-session-number, as stage 1 makes them); "
                              f"give --cross-session false to pair any two utterances.")
    candidates = []
    for us in utts:
        first, second = np.triu_indices(len(us), 1)
        if cross_session:
            sessions = np.array([session_of(u) for u in us])
            keep = sessions[first] != sessions[second]
            first, second = first[keep], second[keep]
        candidates.append((first, second))
    available = [len(first) for first, _ in candidates]
    wanted = int(round(num_trials * target_share))
    wanted = min(max(wanted, 1), num_trials - 1)
    quotas = _quotas(available, wanted, rng)
    pairs = []
    for us, (first, second), quota in zip(utts, candidates, quotas):
        for k in np.sort(rng.choice(len(first), quota, replace=False)):
            pairs.append((us[first[k]], us[second[k]], "target"))
    notes = []
    num_targets = len(pairs)
    if num_targets == 0:
        kind = "cross-session " if cross_session else ""
        raise RecipeError(f"no speaker has two utterances that make a {kind}target pair; "
                          f"a calibration list needs targets.")
    num_nontargets = num_trials - wanted
    if num_targets < wanted:
        num_nontargets = max(1, int(round(num_targets * (1 - target_share) / target_share)))
        notes.append(f"the speakers hold {num_targets} {'cross-session ' * cross_session}"
                     f"target pairs, fewer than the {wanted} asked for: all of them are "
                     f"taken, with {num_nontargets} nontargets to keep the target share "
                     f"{target_share:g}")
    counts = np.array([len(us) for us in utts])
    seen, nontargets = set(), []
    for _ in range(1000):
        if len(nontargets) >= num_nontargets:
            break
        size = 2 * (num_nontargets - len(nontargets)) + 16
        a = rng.integers(len(speakers), size=size)
        b = rng.integers(len(speakers) - 1, size=size)
        b += b >= a   # another speaker, uniformly
        ia = (rng.random(size) * counts[a]).astype(np.int64)
        ib = (rng.random(size) * counts[b]).astype(np.int64)
        for sa, ua, sb, ub in zip(a, ia, b, ib):
            key = (min(utts[sa][ua], utts[sb][ub]), max(utts[sa][ua], utts[sb][ub]))
            if key not in seen:
                seen.add(key)
                nontargets.append((*key, "nontarget"))
                if len(nontargets) == num_nontargets:
                    break
    if len(nontargets) < num_nontargets:
        notes.append(f"only {len(nontargets)} distinct nontarget pairs were found, fewer than "
                     f"the {num_nontargets} asked for")
    trials = pairs + nontargets
    # Which side is enrollment is arbitrary: each pair's order is drawn too.
    swap = rng.random(len(trials)) < 0.5
    trials = sorted((t, e, label) if s else (e, t, label)
                    for (e, t, label), s in zip(trials, swap))
    info = {"trials": str(len(trials)), "targets": str(num_targets),
            "nontargets": str(len(nontargets)), "target_share": f"{target_share:g}",
            "seed": str(seed), "cross_session": str(cross_session).lower(),
            "speakers": str(len(speakers)),
            "speakers_with_targets": str(int((quotas > 0).sum())),
            "utterances": str(int(counts.sum()))}
    return trials, info, notes


# ---- quality measures ---------------------------------------------------------------------------

def measure_names(groups):
    """The trial features of quality measure groups, in order."""
    return [name for group in groups for name in MEASURE_GROUPS[group]]


def parse_measures(text):
    """'duration,cohort_mean' or 'none' -> groups (tuple)."""
    if text in ("", "none"):
        return ()
    groups = tuple(text.split(","))
    for group in groups:
        if group not in MEASURE_GROUPS:
            raise RecipeError(f"unknown quality measure '{group}': use none or a comma-"
                              f"separated list of {', '.join(MEASURE_GROUPS)}.")
    if len(set(groups)) != len(groups):
        raise RecipeError(f"quality measures '{text}' name one twice.")
    return tuple(g for g in MEASURE_GROUPS if g in groups)   # canonical order


def read_frames(paths, enroll_spk2utt=None):
    """{id: frames} from utt2num_frames files; with enroll_spk2utt (model utt1 utt2 ...) each
    model's frames are the sum of its utterances'."""
    frames = {}
    for path in paths:
        if not Path(path).is_file():
            raise RecipeError(f"{path} does not exist; the duration measure needs the "
                              f"utt2num_frames the feature stage (stage 2) writes.")
        for key, value in read_scp_lines(path):
            try:
                frames[key] = int(value)
            except ValueError:
                raise RecipeError(f"{path}: {key} has {value!r} frames, not a whole number; "
                                  f"rerun the feature stage.") from None
    if enroll_spk2utt:
        from pytorch_modules.fileio.kaldi_data import read_spk2utt_rows
        for line_no, model, utts in read_spk2utt_rows(enroll_spk2utt):
            missing = [u for u in utts if u not in frames]
            if missing:
                raise RecipeError(f"{enroll_spk2utt}:{line_no}: {missing[0]} of model {model} "
                                  f"has no frame count in {' '.join(map(str, paths))}.")
            frames[model] = sum(frames[u] for u in utts)
    return frames


@dataclass
class Cohort:
    """What AS-norm's side statistics need: the cohort embeddings (as steps/score_asnorm.sh
    gives them, mean already subtracted when mean_scp is set), the mean, and top-N."""
    cohort_scp: str
    top_n: int
    mean_scp: str | None = None

    def load(self):
        """(mean or None, length-normalised float64 cohort, effective top_n)."""
        from pytorch_modules.fileio.embedding_io import (
            embedding_mean,
            length_normalise,
            load_embeddings,
        )
        from pytorch_modules.scoring.asnorm import effective_top_n
        for path in filter(None, (self.cohort_scp, self.mean_scp)):
            if not Path(path).is_file():
                raise RecipeError(f"{path} does not exist; make the AS-norm cohort first "
                                  f"(stage 4, steps/make_asnorm_cohort.sh).")
        mean = embedding_mean(self.mean_scp) if self.mean_scp else None
        cohort = load_embeddings(self.cohort_scp)[1]
        unit = length_normalise(cohort, np.float64)
        if not np.isfinite(unit).all():
            raise RecipeError(f"the AS-norm cohort {self.cohort_scp} holds a zero or "
                              f"non-finite embedding; rebuild it.")
        return mean, unit, effective_top_n(self.top_n, len(unit))


def side_statistics(emb, rows, cohort_unit, top_n):
    """AS-norm's (mu, sd) of emb[rows] (scoring/asnorm.py's cohort_statistics: the same
    numbers AS-norm scoring divides by)."""
    from pytorch_modules.scoring.asnorm import cohort_statistics
    return cohort_statistics(emb, cohort_unit, top_n, rows=np.asarray(rows, dtype=np.int64))


def cohort_means(ids, enroll_scp, test_scp, cohort: Cohort, enroll_spk2utt=None):
    """{id: mu} for the ids (utterances, or models with enroll_spk2utt), the embeddings read
    and mean-subtracted as pytorch_modules.bin.score reads them."""
    from pytorch_modules.fileio.embedding_io import load_table
    mean, unit, top_n = cohort.load()
    id_to_row, emb = load_table(enroll_scp, test_scp, enroll_spk2utt, mean)
    ids = sorted(set(ids))
    missing = [i for i in ids if i not in id_to_row]
    if missing:
        raise RecipeError(f"{len(missing)} trial id(s) have no embedding in {enroll_scp}"
                          f"{'' if test_scp == enroll_scp else ' or ' + str(test_scp)}, e.g. "
                          f"{missing[0]}; give the embeddings the trials were scored with.")
    if unit.shape[1] != emb.shape[1]:
        raise RecipeError(f"the cohort {cohort.cohort_scp} holds {unit.shape[1]}-d embeddings "
                          f"but {enroll_scp} holds {emb.shape[1]}-d ones; use the cohort of "
                          f"the same model.")
    means, _ = side_statistics(emb, [id_to_row[i] for i in ids], unit, top_n)
    return dict(zip(ids, means))


def trial_features(groups, enroll_ids, test_ids, frames=None, means=None, source=""):
    """(trials, features) matrix of the groups' measures (min and max of the two sides)."""
    columns = []
    for group in groups:
        if group == "duration":
            values, what = frames, "frame count"
        else:
            values, what = means, "cohort mean"
        missing = next((i for i in list(enroll_ids) + list(test_ids) if i not in values), None)
        if missing is not None:
            raise RecipeError(f"{missing} of {source or 'the trials'} has no {what}; give the "
                              f"utt2num_frames / embeddings of the data the trials name.")
        e = np.array([values[i] for i in enroll_ids], dtype=np.float64)
        t = np.array([values[i] for i in test_ids], dtype=np.float64)
        if group == "duration":
            e, t = np.log(e), np.log(t)
        columns += [np.minimum(e, t), np.maximum(e, t)]
    return np.stack(columns, axis=1) if columns else np.zeros((len(enroll_ids), 0))


# ---- the calibration ----------------------------------------------------------------------------

@dataclass
class Calibration:
    """llr = offset + scale * score + weights . measures (module doc)."""
    offset: float
    scale: float
    groups: tuple = ()
    weights: tuple = ()
    prior: float = 0.5
    backend: str = "cosine"
    cohort: Cohort | None = None
    info: dict = field(default_factory=dict)

    @property
    def measures(self):
        return measure_names(self.groups)

    def llr(self, scores, features=None):
        scores = np.asarray(scores, dtype=np.float64)
        llrs = self.offset + self.scale * scores
        if self.groups:
            llrs = llrs + np.asarray(features, dtype=np.float64) @ np.asarray(self.weights)
        return llrs

    def formula(self):
        terms = [f"{self.offset:+.4f}", f"{self.scale:+.4f} * score"] + [
            f"{w:+.4f} * {name}" for name, w in zip(self.measures, self.weights)]
        return "llr = " + " ".join(terms)


def fit(scores, labels, features=None, groups=(), prior=None):
    """The Calibration of labelled scores (and their quality measures, (trials, k)) at
    `prior` (default: the target share of the trials); module doc."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_tar, n_non = int(labels.sum()), int((~labels).sum())
    if n_tar == 0 or n_non == 0:
        raise RecipeError("the calibration trials need both targets and nontargets.")
    if prior is None:
        prior = n_tar / labels.size
    if not 0 < prior < 1:
        raise RecipeError(f"the calibration prior must lie strictly between 0 and 1; got "
                          f"{prior}.")
    names = ["score"] + measure_names(groups)
    x = np.column_stack([scores] + ([] if features is None or not groups
                                    else [np.asarray(features, dtype=np.float64)]))
    if not np.isfinite(x).all():
        raise RecipeError("the calibration scores or measures hold NaN or infinite values.")
    centre, spread = x.mean(axis=0), x.std(axis=0)
    flat = [name for name, s in zip(names, spread) if s == 0]
    if flat:
        raise RecipeError(f"{flat[0]} takes one value on every calibration trial, so its "
                          f"weight cannot be fitted; leave that measure out.")
    weights = np.where(labels, prior / n_tar, (1 - prior) / n_non) * labels.size
    model = LogisticRegression(C=np.inf, tol=1e-8, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            model.fit((x - centre) / spread, labels, sample_weight=weights)
        except ConvergenceWarning:
            raise RecipeError("the logistic regression did not converge on the calibration "
                              "trials: their targets and nontargets are (almost) perfectly "
                              "separated; use a larger calibration list.") from None
    coef = model.coef_[0] / spread
    offset = float(model.intercept_[0] - coef @ centre - logit(prior))
    fitted = x @ coef
    if fitted[labels].min() > fitted[~labels].max():
        # Separable classes have no maximum-likelihood fit: the solver stops somewhere on
        # the way to an infinite scale.
        raise RecipeError("the calibration trials' targets and nontargets are perfectly "
                          "separated, so the calibration would be arbitrarily confident; use a "
                          "larger calibration list.")
    if coef[0] <= 0:
        raise RecipeError(f"the fitted calibration falls with the score (scale {coef[0]:.4g}): "
                          f"the calibration scores do not rank targets above nontargets.")
    return Calibration(offset=offset, scale=float(coef[0]), groups=tuple(groups),
                       weights=tuple(float(w) for w in coef[1:]), prior=float(prior))


def calibration_path(model_path) -> Path:
    """exp/m/final.pt -> exp/m/final.calibration."""
    return Path(model_path).with_suffix(CALIBRATION_SUFFIX)


def write(path, cal: Calibration) -> None:
    """The calibration file (module doc), by rename."""
    entries = {"offset": repr(cal.offset), "scale": repr(cal.scale),
               "measures": ",".join(cal.measures) or "none"}
    entries.update((f"weight_{name}", repr(w)) for name, w in zip(cal.measures, cal.weights))
    entries.update(prior=repr(cal.prior), backend=cal.backend)
    if cal.cohort is not None:
        if cal.cohort.mean_scp:
            entries["mean_scp"] = cal.cohort.mean_scp
        entries.update(cohort_scp=cal.cohort.cohort_scp, top_n=cal.cohort.top_n)
    if "duration" in cal.groups:
        entries["durations"] = "log of the feature frames (utt2num_frames)"
    entries.update(cal.info)
    sidecar.write(path, "score calibration (pytorch_modules/scoring/calibration.py): llr = "
                  "offset + scale * score + the sum of weight_<m> * <m> over the measures",
                  entries)


def read(path) -> Calibration:
    """A calibration file, checked."""
    entries = sidecar.read(path, "write it again with pytorch_modules.bin.calibrate_scores.")

    def number(key, kind=float):
        try:
            return kind(entries[key])
        except (KeyError, ValueError):
            raise RecipeError(f"{path} holds no valid '{key}' line; write it again with "
                              f"pytorch_modules.bin.calibrate_scores.") from None

    measures = entries.get("measures", "none")
    names = [] if measures == "none" else measures.split(",")
    groups = tuple(g for g in MEASURE_GROUPS if set(MEASURE_GROUPS[g]) & set(names))
    if measure_names(groups) != names:
        raise RecipeError(f"{path}: unknown measures '{measures}' (known: "
                          f"{', '.join(measure_names(MEASURE_GROUPS))}).")
    backend = entries.get("backend", "")
    if backend not in BACKENDS:
        raise RecipeError(f"{path}: backend '{backend}' is not one of {', '.join(BACKENDS)}.")
    cohort = None
    if backend == "asnorm" or "cohort_mean" in groups:
        if "cohort_scp" not in entries:
            raise RecipeError(f"{path} names no cohort_scp, which its {backend} back-end or "
                              f"cohort-mean measure needs.")
        cohort = Cohort(entries["cohort_scp"], number("top_n", int), entries.get("mean_scp"))
    known = {"offset", "scale", "measures", "prior", "backend", "mean_scp", "cohort_scp",
             "top_n", "durations"} | {f"weight_{n}" for n in names}
    cal = Calibration(offset=number("offset"), scale=number("scale"), groups=groups,
                      weights=tuple(number(f"weight_{n}") for n in names),
                      prior=number("prior"), backend=backend, cohort=cohort,
                      info={k: v for k, v in entries.items() if k not in known})
    return cal
