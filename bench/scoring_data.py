"""Generated Vox1-E-size scoring inputs for bench/scoring.py and bench/memory.py, cached on disk.

Embeddings: one per utterance, VoxCeleb-style ids (`id10001-AbCdEfGhIjK-00001`, sorted in C
order), 1251 speakers, each vector a speaker mean plus noise (so that EER is neither 0 nor
50% and the metrics' sort sees realistic score ties), written with kaldiio into several arks
plus one scp, as `--nj` embedding jobs and their merged scp would be.  Trials: `enroll test
target|nontarget` lines, half targets, as Vox1-E's list.
"""
import os

import common
import kaldiio
import numpy as np

SPEAKERS = 1251
ID_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
SESSIONS_PER_SPEAKER = 18
# Within-speaker noise relative to the speaker mean: target cosines ~0.1, nontarget ~0,
# each +- 0.03 at 1024 dims, which gives an EER of a few per cent.
NOISE = 3.0


def utterance_ids(rng, count):
    """Sorted, unique VoxCeleb-style ids and each one's speaker index."""
    speakers = np.sort(rng.integers(0, SPEAKERS, size=count))
    sessions = rng.choice(ID_CHARS, size=(SPEAKERS, SESSIONS_PER_SPEAKER, 11))
    session_of = rng.integers(0, SESSIONS_PER_SPEAKER, size=count)
    ids = [f"id{10001 + s:05d}-{''.join(sessions[s, k])}-{n:05d}"
           for n, (s, k) in enumerate(zip(speakers.tolist(), session_of.tolist()))]
    order = sorted(range(count), key=ids.__getitem__)  # C order, as Kaldi data files are
    return [ids[i] for i in order], speakers[order]


def write_embeddings(directory, rng, ids, speakers, dim, num_arks):
    """xvector.N.ark + one xvector.scp over all of them (the merged scp of --nj jobs)."""
    means = rng.standard_normal((SPEAKERS, dim), dtype=np.float32)
    lines = []
    for job, block in enumerate(np.array_split(np.arange(len(ids)), num_arks), 1):
        ark, scp = f"{directory}/xvector.{job}.ark", f"{directory}/xvector.{job}.scp"
        noise = rng.standard_normal((len(block), dim), dtype=np.float32) * np.float32(NOISE)
        vectors = means[speakers[block]] + noise
        with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
            for row, index in enumerate(block.tolist()):
                writer(ids[index], vectors[row])
        with open(scp) as f:
            lines.append(f.read())
        os.remove(scp)
    with open(f"{directory}/xvector.scp", "w") as f:
        f.writelines(lines)


def trial_pairs(rng, speakers, count):
    """(enroll rows, test rows, is_target): half same-speaker pairs, half different-speaker."""
    n = len(speakers)
    first = np.searchsorted(speakers, np.arange(SPEAKERS))
    per_speaker = np.bincount(speakers, minlength=SPEAKERS)
    targets = count // 2
    enroll = rng.integers(0, n, size=count)
    test = rng.integers(0, n, size=count)
    # Targets: another utterance of the enrolled speaker (speakers are contiguous rows).
    s = speakers[enroll[:targets]]
    shift = 1 + rng.integers(0, np.maximum(per_speaker[s] - 1, 1))
    test[:targets] = first[s] + (enroll[:targets] - first[s] + shift) % per_speaker[s]
    # Nontargets: redraw the few test utterances that happen to share the speaker.
    clash = targets + np.flatnonzero(speakers[test[targets:]] == speakers[enroll[targets:]])
    while clash.size:
        test[clash] = rng.integers(0, n, size=clash.size)
        clash = clash[speakers[test[clash]] == speakers[enroll[clash]]]
    is_target = np.arange(count) < targets
    order = rng.permutation(count)  # interleave targets and nontargets
    return enroll[order], test[order], is_target[order]


def write_trials(path, rng, ids, speakers, count):
    enroll, test, is_target = trial_pairs(rng, speakers, count)
    labels = np.where(is_target, "target", "nontarget")
    with open(path, "w") as f:
        f.write("".join(f"{ids[e]} {ids[t]} {l}\n"
                        for e, t, l in zip(enroll.tolist(), test.tolist(), labels.tolist())))


def scoring_inputs(num_utts, dim, num_trials, num_arks=8, regenerate=False, seed=0,
                   root="/tmp/bench_scoring"):
    """(xvector.scp, trials) for these sizes, generated once and cached under `root`."""
    def generate(directory):
        rng = np.random.default_rng(seed)
        ids, speakers = utterance_ids(rng, num_utts)
        write_embeddings(directory, rng, ids, speakers, dim, num_arks)
        write_trials(f"{directory}/trials", rng, ids, speakers, num_trials)

    directory = common.generated_once(
        f"{root}/u{num_utts}_d{dim}_t{num_trials}_a{num_arks}_s{seed}", generate, regenerate)
    return f"{directory}/xvector.scp", f"{directory}/trials"
