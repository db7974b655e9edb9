"""Embeddings on disk: Kaldi vectors in arks indexed by an scp (`utt ark_path:offset`), as
kaldiio writes them; read one at a time (iter_embeddings) or all at once (load_embeddings, or
load_table for the enrollment and test sides of a trial list), written whole (write_vectors).
Every error names the scp line and what to do.
"""
import os

import kaldiio
import numpy as np

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio import fast_ark
from pytorch_modules.fileio.kaldi_data import id_problem, read_spk2utt_rows


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


def iter_embeddings(scp_path):
    """Yield (id, vector) for every entry of a Kaldi scp, in scp order, one at a time.

    Streaming keeps memory flat for training sets of a million utterances (the AS-norm
    cohort and the training mean are sums over them)."""
    keys = _scp_keys(scp_path)
    loader = kaldiio.load_scp_sequential(scp_path)  # keeps each ark open while reading it
    dim = None
    for line_no, key in enumerate(keys, 1):
        try:
            _, value = next(loader)
        except Exception as err:  # kaldiio raises many types for broken or missing arks
            raise RecipeError(
                f"{scp_path}:{line_no}: cannot read the embedding of {key} ({err}); rerun "
                f"embedding extraction for this set.") from None
        vec = _as_vector(value, scp_path, line_no, key)
        if dim is not None and vec.size != dim:
            raise RecipeError(
                f"{scp_path}:{line_no}: the embedding of {key} has {vec.size} dimensions but "
                f"{keys[0]} has {dim}; the scp mixes embeddings of different models.")
        dim = vec.size
        yield key, vec


def load_embeddings(scp_path):
    """Read every vector of a Kaldi scp, in scp order.

    Returns (ids, matrix) with matrix float32 of shape (len(ids), dim).  Plain embedding arks
    are read by fast_ark (a few NumPy operations per ark instead of kaldiio's per-object
    parsing; bench/README.md); anything else, including every kind of damage, goes through kaldiio
    one entry at a time, whose errors name the line."""
    fast = fast_ark.read_vectors(scp_path)
    if fast is not None:
        return fast
    ids, vectors = [], []
    for key, vec in iter_embeddings(scp_path):
        ids.append(key)
        vectors.append(vec)
    return ids, np.stack(vectors).astype(np.float32, copy=False)


def write_vectors(ark, scp, ids, vectors) -> str:
    """The vectors as a Kaldi ark and scp (float32); the scp is written as SCP.tmp and renamed
    once the ark is complete, so a finished scp always points at whole vectors.  Returns scp.
    An id that a Kaldi table cannot hold is refused before anything is written."""
    for key in ids:
        problem = id_problem(key)
        if problem:
            raise RecipeError(f"cannot write the embedding of {key!r} to {scp}: as an id, "
                              f"{problem}; give it an id without spaces")
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}.tmp") as writer:
        for key, vec in zip(ids, vectors):
            writer(key, np.asarray(vec, dtype=np.float32))
    os.replace(f"{scp}.tmp", scp)
    return scp


def embedding_mean(scp_path):
    """The average embedding of an scp (float64, streamed): the training-set mean that
    mean subtraction removes.  A one-entry scp (make_cohort's mean.scp) is its own mean."""
    total, count = None, 0
    for _, vec in iter_embeddings(scp_path):
        total = vec.astype(np.float64) if total is None else total + vec
        count += 1
    return total / count


def subtract_mean(emb, mean, source="the embeddings"):
    """emb - mean (float32); None means no mean subtraction.  Subtracting the training mean
    before length-normalisation centres the embeddings, so cosine scores no longer carry the
    direction every embedding shares."""
    if mean is None:
        return emb
    if mean.shape != (emb.shape[1],):
        raise RecipeError(
            f"the mean embedding has {mean.size} dimensions but {source} has {emb.shape[1]}; "
            f"take the mean of the training embeddings of the same model.")
    return (emb - mean).astype(np.float32)


def mean_by_model(ids, emb, spk2utt_path):
    """One embedding per enrollment model: the mean of its utterances' length-normalised
    embeddings (SITW enrolls a model from one or more utterances).

    spk2utt lines are `model utt1 utt2 ...`; returns (model ids, (models, dim) matrix)."""
    unit = length_normalise(emb)
    models, means = [], []
    for _, model, rows in model_rows({utt: i for i, utt in enumerate(ids)}, spk2utt_path):
        models.append(model)
        means.append(unit[rows].mean(axis=0))
    return models, np.stack(means).astype(np.float32)


def model_rows(id_to_row, spk2utt_path):
    """(line number, model, rows of its utterances) of each spk2utt line, every utterance
    checked to have an embedding (a row of id_to_row)."""
    for line_no, model, utts in read_spk2utt_rows(spk2utt_path):
        missing = [u for u in utts if u not in id_to_row]
        if missing:
            raise RecipeError(f"{spk2utt_path}:{line_no}: model {model} names {missing[0]}, "
                              f"which has no embedding; rerun embedding extraction for the "
                              f"enrollment set.")
        yield line_no, model, [id_to_row[u] for u in utts]


def load_table(enroll_scp, test_scp, enroll_spk2utt=None, mean=None):
    """One (id -> row, matrix) table over both scps; an scp given twice is read once.

    `mean` (or None) is subtracted from every utterance embedding as it is read, so that
    enrollment models are averaged from mean-subtracted embeddings.  An id present in both
    scps must carry the same vector, or which one a trial means is unclear."""
    ids, emb = load_embeddings(enroll_scp)
    emb = subtract_mean(emb, mean, enroll_scp)
    if enroll_spk2utt:
        ids, emb = mean_by_model(ids, emb, enroll_spk2utt)
    id_to_row = {utt: row for row, utt in enumerate(ids)}
    if os.path.realpath(test_scp) == os.path.realpath(enroll_scp) and not enroll_spk2utt:
        return id_to_row, emb
    test_ids, test_emb = load_embeddings(test_scp)
    if test_emb.shape[1] != emb.shape[1]:
        raise RecipeError(f"{enroll_scp} holds {emb.shape[1]}-d embeddings but {test_scp} holds "
                          f"{test_emb.shape[1]}-d ones; score embeddings of one model.")
    test_emb = subtract_mean(test_emb, mean, test_scp)
    for row, utt in enumerate(test_ids):
        if utt in id_to_row and not np.array_equal(emb[id_to_row[utt]], test_emb[row]):
            raise RecipeError(f"{utt} has different embeddings in {enroll_scp} and {test_scp}; "
                              f"give enrollment models ids distinct from test utterances.")
    new = [row for row, utt in enumerate(test_ids) if utt not in id_to_row]
    for offset, row in enumerate(new):
        id_to_row[test_ids[row]] = len(ids) + offset
    return id_to_row, np.concatenate([emb, test_emb[new]])


def length_normalise(emb, dtype=np.float32):
    """Rows scaled to unit length; zero rows stay zero (callers check the rows they use)."""
    emb = np.asarray(emb, dtype=dtype)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)
