"""Cosine back-end: read embeddings and Kaldi trials, score, evaluate, write results.

Embeddings are Kaldi vectors in arks indexed by an scp (`utt ark_path:offset`), as written by
kaldiio.  Trials are Kaldi trials, `enroll test target|nontarget`, or `enroll test` without
labels (then scores are written but no EER/minDCF can be computed).
"""

import os
import tempfile

import kaldiio
import numpy as np

from pytorch_modules.errors import RecipeError
from pytorch_modules.metrics import compute_eer, compute_min_dcf

# Trials scored per vectorised step: bounds the gathered (chunk, dim) float32 copies to
# about 2 x 256 MiB for 1024-d embeddings, whatever the number of trials.
SCORE_CHUNK = 65536
# p_target values reported for minDCF (VoxCeleb / NIST SRE conventions).
DCF_P_TARGETS = (0.01, 0.001)
MAX_LISTED_IDS = 5


def _scp_keys(scp_path):
    """Utterance ids of an scp in file order; malformed or repeated entries fail with file:line."""
    keys, seen = [], {}
    with open(scp_path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split(None, 1)
            if len(fields) != 2:
                raise RecipeError(
                    f"{scp_path}:{line_no}: malformed line {line.rstrip()!r}; expected "
                    f"'UTT ARK_PATH:OFFSET'. Rerun embedding extraction to rewrite the scp.")
            if fields[0] in seen:
                raise RecipeError(
                    f"{scp_path}:{line_no}: {fields[0]} already appeared on line "
                    f"{seen[fields[0]]}; each utterance must have one embedding.")
            seen[fields[0]] = line_no
            keys.append(fields[0])
    if not keys:
        raise RecipeError(f"{scp_path} is empty; rerun embedding extraction.")
    return keys


def _as_vector(value, scp_path, line_no, key):
    """Accept a Kaldi vector or a 1-row matrix; anything else is not an embedding."""
    vec = np.asarray(value)
    if vec.ndim == 2 and vec.shape[0] == 1:
        vec = vec[0]
    if vec.ndim != 1 or vec.size == 0:
        raise RecipeError(
            f"{scp_path}:{line_no}: the entry for {key} has shape {vec.shape}, not a vector; "
            f"expected one embedding per utterance (are these features rather than embeddings?).")
    return vec


def load_embeddings(scp_path):
    """Read every vector of a Kaldi scp, in scp order.

    Returns (ids, matrix) with matrix float32 of shape (len(ids), dim)."""
    keys = _scp_keys(scp_path)
    loader = kaldiio.load_scp_sequential(scp_path)  # keeps each ark open while reading it
    vectors = []
    for line_no, key in enumerate(keys, 1):
        try:
            _, value = next(loader)
        except Exception as err:  # kaldiio raises many types for broken or missing arks
            raise RecipeError(
                f"{scp_path}:{line_no}: cannot read the embedding of {key} ({err}); rerun "
                f"embedding extraction for this set.") from None
        vec = _as_vector(value, scp_path, line_no, key)
        if vectors and vec.size != vectors[0].size:
            raise RecipeError(
                f"{scp_path}:{line_no}: the embedding of {key} has {vec.size} dimensions but "
                f"{keys[0]} has {vectors[0].size}; the scp mixes embeddings of different models.")
        vectors.append(vec)
    return keys, np.stack(vectors).astype(np.float32)


def mean_by_model(ids, emb, spk2utt_path):
    """One embedding per enrollment model: the mean of its utterances' length-normalised
    embeddings (SITW enrolls a model from one or more utterances).

    spk2utt lines are `model utt1 utt2 ...`; returns (model ids, (models, dim) matrix)."""
    row = {utt: i for i, utt in enumerate(ids)}
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(min=1e-12)
    models, means = [], []
    with open(spk2utt_path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) < 2:
                raise RecipeError(f"{spk2utt_path}:{line_no}: expected 'MODEL UTT [UTT ...]', "
                                  f"got {line.rstrip()!r}")
            missing = [u for u in fields[1:] if u not in row]
            if missing:
                raise RecipeError(f"{spk2utt_path}:{line_no}: model {fields[0]} names {missing[0]}, "
                                  f"which has no embedding; rerun embedding extraction for the "
                                  f"enrollment set.")
            models.append(fields[0])
            means.append(unit[[row[u] for u in fields[1:]]].mean(axis=0))
    if not models:
        raise RecipeError(f"{spk2utt_path} lists no models")
    return models, np.stack(means).astype(np.float32)


def read_trials(path):
    """Read Kaldi trials.

    Returns (enroll ids, test ids, labels): labels is an int8 array, 1 = target and
    0 = nontarget, or None when the file has no label column."""
    enroll, test, labels = [], [], []
    n_fields = None
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if n_fields is None:
                n_fields = len(fields)  # the first line decides labelled vs unlabelled
            if len(fields) != n_fields or n_fields not in (2, 3) or (
                    n_fields == 3 and fields[2] not in ("target", "nontarget")):
                raise RecipeError(
                    f"{path}:{line_no}: malformed trial {line.rstrip()!r}; expected "
                    f"'ENROLL TEST target|nontarget' (or 'ENROLL TEST' on every line for "
                    f"unlabelled trials).")
            enroll.append(fields[0])
            test.append(fields[1])
            if n_fields == 3:
                labels.append(fields[2] == "target")
    if not enroll:
        raise RecipeError(f"{path} holds no trials.")
    return enroll, test, (np.array(labels, dtype=np.int8) if n_fields == 3 else None)


def _rows(ids, id_to_row, trials_path):
    """Row numbers of ids; ids without an embedding fail with a list of them."""
    rows = np.fromiter((id_to_row.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
    if (rows < 0).any():
        missing = sorted({i for i in ids if i not in id_to_row})
        shown = ", ".join(missing[:MAX_LISTED_IDS])
        more = f" and {len(missing) - MAX_LISTED_IDS} more" if len(missing) > MAX_LISTED_IDS else ""
        raise RecipeError(
            f"{len(missing)} id(s) in {trials_path} have no embedding: {shown}{more}. Rerun "
            f"embedding extraction for the set these trials belong to.")
    return rows


def cosine_score(enroll_ids, test_ids, id_to_row, emb, trials_path="the trials"):
    """Cosine similarity of each (enroll, test) pair; returns a float64 array in trial order.

    id_to_row maps an id to its row of emb (n, dim).  Rows are length-normalised once, then
    each chunk of trials is one gather and one row-wise dot product."""
    enroll_rows = _rows(enroll_ids, id_to_row, trials_path)
    test_rows = _rows(test_ids, id_to_row, trials_path)
    norms = np.linalg.norm(emb, axis=1)
    used = np.union1d(enroll_rows, test_rows)
    bad_rows = used[~(np.isfinite(norms[used]) & (norms[used] > 0))]
    if bad_rows.size:
        bad_id = next(i for i, row in id_to_row.items() if row == bad_rows[0])
        raise RecipeError(
            f"the embedding of {bad_id} is zero or not finite, so its cosine score is undefined; "
            f"check that utterance's audio and rerun embedding extraction.")
    with np.errstate(divide="ignore", invalid="ignore"):  # unused bad rows may divide by 0
        unit = (emb / norms[:, None]).astype(np.float32)
    scores = np.empty(len(enroll_rows), dtype=np.float64)
    for start in range(0, len(scores), SCORE_CHUNK):
        stop = start + SCORE_CHUNK
        scores[start:stop] = np.einsum(
            "ij,ij->i", unit[enroll_rows[start:stop]], unit[test_rows[start:stop]])
    return scores


def evaluate(scores, labels, name, trials_path="the trials"):
    """Results as an ordered dict of `key value` strings (the results-file format)."""
    results = {"name": name, "trials": str(len(scores))}
    if labels is None:
        return results
    try:
        eer, threshold = compute_eer(scores, labels)
    except ValueError as err:  # e.g. a trials file with only target trials
        raise RecipeError(f"{trials_path}: {err}") from None
    results["eer_percent"] = f"{100 * eer:.4f}"
    for p_target in DCF_P_TARGETS:
        results[f"min_dcf_p{p_target:g}"] = f"{compute_min_dcf(scores, labels, p_target)[0]:.4f}"
    results["eer_threshold"] = f"{threshold:.6f}"
    return results


def summary_line(results):
    """'vox1_o: EER 4.38%  minDCF(0.01) 0.4123  minDCF(0.001) 0.5321  (37611 trials)'."""
    if "eer_percent" not in results:
        return f"{results['name']}: {results['trials']} trials scored (unlabelled: no EER)"
    dcfs = "  ".join(f"minDCF({p:g}) {results[f'min_dcf_p{p:g}']}" for p in DCF_P_TARGETS)
    return (f"{results['name']}: EER {float(results['eer_percent']):.2f}%  {dcfs}  "
            f"({results['trials']} trials)")


def write_lines_atomic(path, lines):
    """Write lines to path through a temporary file renamed into place, so that a crash
    never leaves a truncated scores or results file behind."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_results(path):
    """Read a `key value` results file into a dict; malformed lines fail with file:line."""
    results = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise RecipeError(
                    f"{path}:{line_no}: malformed line {line.rstrip()!r}; expected 'KEY VALUE' "
                    f"as written by pytorch_modules.bin.score.")
            results[fields[0]] = fields[1]
    return results
