"""Adaptive symmetric score normalisation (AS-norm) against a cohort of training speakers.

Each side of a trial is scored against every cohort embedding; the N highest of those cohort
scores (the cohort members most like that side: "adaptive") give a mean and a standard
deviation, and the trial's cosine score s is normalised by both sides' statistics:

    s_norm = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)

mu_e, sd_e: mean and (population) standard deviation of the top-N cohort scores of the
enrollment side; mu_t, sd_t: the same for the test side (Matejka et al., Interspeech 2017; the
form WeSpeaker and most VoxCeleb systems use).  The statistics depend only on the embedding, so
they are computed once per unique enrollment or test id, whatever the number of trials.

The cohort is one embedding per training speaker: the mean of the speaker's length-normalised
embeddings (`speaker_cohort`).  With mean subtraction the training-set mean embedding is taken
off every embedding (cohort, enrollment and test alike) before length-normalisation.
"""
import numpy as np

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.embedding_io import iter_embeddings, length_normalise
from pytorch_modules.fileio.kaldi_data import read_spk2utt_rows
from pytorch_modules.scoring.cosine import row_cosines, trial_rows

DEFAULT_TOP_N = 300
# Embeddings scored against the whole cohort per step: 4096 x 6000 float32 scores is 94 MiB,
# whatever the number of unique ids (Vox1-E/H embed 145,000 utterances).
COHORT_CHUNK = 4096
# Rows whose top-N cohort scores spread (std) less than this are computed again in float64:
# float32 rounding of a cosine (about 1e-7 per product, some 1e-6 summed over 1024 dims)
# divided by the spread then reaches 1e-4 of a normalised score.  Real cohorts spread about
# 0.03 to 0.1.
FLOAT32_MIN_SPREAD = 0.005


def speaker_cohort(scp_path, spk2utt_path, mean=None):
    """One cohort embedding per speaker of spk2utt: the mean of its utterances' length-
    normalised embeddings (after subtracting `mean`, when given).

    Streams the scp, so a training set of a million utterances needs memory for the speaker
    sums only.  Utterances of the scp that spk2utt does not list are ignored; a listed one
    without an embedding is an error.  Returns (speaker ids, (speakers, dim) float32)."""
    speakers = read_spk2utt_rows(spk2utt_path)
    speaker_of = {}
    for index, (line_no, _, utts) in enumerate(speakers):
        for utt in utts:
            if utt in speaker_of:
                raise RecipeError(f"{spk2utt_path}:{line_no}: {utt} is listed under two speakers; "
                                  f"fix the data dir (utils/fix_data_dir.sh).")
            speaker_of[utt] = index
    sums, counts, seen = None, np.zeros(len(speakers), dtype=np.int64), set()
    for utt, vec in iter_embeddings(scp_path):
        index = speaker_of.get(utt)
        if index is None:
            continue
        if mean is not None and mean.shape != vec.shape:
            raise RecipeError(f"the mean embedding has {mean.size} dimensions but {scp_path} "
                              f"holds {vec.size}-d embeddings; use the mean of this model's "
                              f"training embeddings.")
        vec = vec.astype(np.float64) - (0.0 if mean is None else mean)
        norm = np.linalg.norm(vec)
        if not np.isfinite(norm) or norm == 0:
            raise RecipeError(f"{scp_path}: the embedding of {utt} is zero or not finite; check "
                              f"that utterance's audio and rerun embedding extraction.")
        if sums is None:
            sums = np.zeros((len(speakers), vec.size))
        sums[index] += vec / norm
        counts[index] += 1
        seen.add(utt)
    missing = [utt for utt in speaker_of if utt not in seen]
    if missing:
        raise RecipeError(f"{len(missing)} utterance(s) of {spk2utt_path} have no embedding in "
                          f"{scp_path}, e.g. {missing[0]}; embed the whole training set first.")
    return [speaker for _, speaker, _ in speakers], (sums / counts[:, None]).astype(np.float32)


def effective_top_n(top_n, cohort_size):
    """top_n capped at the cohort size; fewer than 2 scores have no spread to divide by."""
    if top_n < 2:
        raise RecipeError(f"AS-norm needs --top-n of at least 2 (the standard deviation of one "
                          f"cohort score is 0); got {top_n}.")
    if cohort_size < 2:
        raise RecipeError(f"the AS-norm cohort holds {cohort_size} embedding(s); it needs at "
                          f"least 2 training speakers.")
    return min(top_n, cohort_size)


def top_statistics(emb, rows, cohort_unit, top_n):
    """Mean and standard deviation (float64) of the top_n cosine scores of each of emb[rows]
    against cohort_unit (length-normalised), the product in cohort_unit's dtype.

    Rows are gathered, scored and divided by their norms a chunk at a time: a normalised copy
    of the whole table would be 600 MB (float32) to 1.2 GB (float64) of fresh memory for
    Vox1-E, which took longer than the cohort product.  np.partition finds the top_n of each
    row without sorting the whole cohort."""
    dtype = cohort_unit.dtype
    means = np.empty(len(rows))
    stds = np.empty(len(rows))
    for start in range(0, len(rows), COHORT_CHUNK):
        block = np.asarray(emb[rows[start:start + COHORT_CHUNK]], dtype=dtype)
        scores = block @ cohort_unit.T
        scores /= np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]
        top = np.partition(scores, scores.shape[1] - top_n, axis=1)[:, -top_n:]
        top = top.astype(np.float64, copy=False)
        means[start:start + len(top)] = top.mean(axis=1)
        stds[start:start + len(top)] = top.std(axis=1)
    return means, stds


def cohort_statistics(emb, cohort_unit, top_n, rows=None):
    """Mean and standard deviation (float64) of the top_n cosine scores of each row of emb
    (or of emb[rows]) against the length-normalised cohort.

    The cohort product runs in float32, about twice as fast as float64; rows whose spread is
    under FLOAT32_MIN_SPREAD, where float32 rounding could show, are computed again in
    float64."""
    rows = np.arange(len(emb)) if rows is None else rows
    means, stds = top_statistics(emb, rows, np.asarray(cohort_unit, np.float32), top_n)
    narrow = np.flatnonzero(stds < FLOAT32_MIN_SPREAD)
    if narrow.size:
        means[narrow], stds[narrow] = top_statistics(
            emb, rows[narrow], np.asarray(cohort_unit, np.float64), top_n)
    return means, stds


def asnorm_score(enroll_ids, test_ids, id_to_row, emb, cohort, top_n=DEFAULT_TOP_N,
                 trials_path="the trials"):
    """AS-norm scores (float64, trial order) of the trials, and their raw cosine scores.

    emb (n, dim) holds the trials' embeddings, rows found through id_to_row; cohort
    (speakers, dim) the cohort embeddings, in the same space (mean already subtracted from
    both when mean subtraction is wanted).  Returns (normalised scores, raw scores).

    The statistics and the normalisation are float64: dividing by the spread of the top
    cohort scores magnifies rounding (a small top-N on a small cohort can have a spread near
    1e-3); the cohort product is float32 where that is safe (cohort_statistics)."""
    enroll_rows, test_rows = trial_rows(enroll_ids, test_ids, id_to_row, trials_path)
    raw = row_cosines(emb, id_to_row, enroll_rows, test_rows)  # checks the rows' norms
    cohort_unit = length_normalise(cohort, np.float64)
    if not np.isfinite(cohort_unit).all():
        raise RecipeError("the AS-norm cohort holds a zero or non-finite embedding; rebuild it "
                          "from the training set's embeddings (pytorch_modules.bin.make_cohort).")
    top_n = effective_top_n(top_n, len(cohort_unit))
    # Statistics of each used row, scattered back to a full-size table indexed by row.
    used = np.union1d(enroll_rows, test_rows)
    means, stds = np.zeros(len(emb)), np.ones(len(emb))
    means[used], stds[used] = cohort_statistics(emb, cohort_unit, top_n, rows=used)
    flat = used[stds[used] == 0]
    if flat.size:
        flat_id = next(i for i, row in id_to_row.items() if row == flat[0])
        raise RecipeError(f"the top-{top_n} cohort scores of {flat_id} are all equal, so they "
                          f"cannot normalise its scores; the cohort holds duplicate speakers or "
                          f"--top-n is too small.")
    normalised = 0.5 * ((raw - means[enroll_rows]) / stds[enroll_rows]
                        + (raw - means[test_rows]) / stds[test_rows])
    return normalised, raw
