"""AS-norm and mean subtraction: hand numbers, a per-trial reference on random data, the
cohort built from a training set, and the score / make_cohort / score_asnorm.sh entry points."""
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.embedding_io import embedding_mean, length_normalise, subtract_mean
from pytorch_modules.scoring import asnorm as asnorm_module
from pytorch_modules.scoring.asnorm import asnorm_score, cohort_statistics, speaker_cohort
from pytorch_modules.scoring.cosine import cosine_score, read_results

ROOT = Path(__file__).resolve().parents[1]


def write_vectors(path_prefix, vectors):
    """{id: vector} -> PREFIX.ark + PREFIX.scp; returns the scp path."""
    ark, scp = f"{path_prefix}.ark", f"{path_prefix}.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for key, vec in vectors.items():
            writer(key, np.asarray(vec, dtype=np.float32))
    return scp


def write_text(path, lines):
    Path(path).write_text("".join(line + "\n" for line in lines))
    return str(path)


def reference_asnorm(e, t, cohort, top_n):
    """AS-norm of one trial written out straight from the definition, in float64."""
    def unit(v):
        return v / np.linalg.norm(v)

    def top_stats(v):
        scores = sorted((float(unit(v) @ unit(c)) for c in cohort), reverse=True)[:top_n]
        return np.mean(scores), np.std(scores)

    s = float(unit(e) @ unit(t))
    mu_e, sd_e = top_stats(e)
    mu_t, sd_t = top_stats(t)
    return 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)


# Cohort scores of e = (1, 0): [1, 0.6, 0, -1] -> top 2 [1, 0.6]: mean 0.8, sd 0.2.
# Cohort scores of t = (0, 1): [0, 0.8, 1, 0] -> top 2 [1, 0.8]: mean 0.9, sd 0.1.
HAND_COHORT = np.array([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]], dtype=np.float32)
HAND_EMB = np.array([[1, 0], [0, 1]], dtype=np.float32)


def test_asnorm_hand_numbers():
    ids = {"e": 0, "t": 1}
    normalised, raw = asnorm_score(["e", "e", "t"], ["t", "e", "t"], ids, HAND_EMB,
                                   HAND_COHORT, top_n=2)
    np.testing.assert_allclose(raw, [0, 1, 1], atol=1e-7)
    # e-t: s = 0 -> 0.5 ((0 - 0.8) / 0.2 + (0 - 0.9) / 0.1) = 0.5 (-4 - 9) = -6.5
    # e-e: s = 1 -> 0.5 ((1 - 0.8) / 0.2 + (1 - 0.8) / 0.2) = 1
    # t-t: s = 1 -> 0.5 ((1 - 0.9) / 0.1 + (1 - 0.9) / 0.1) = 1
    np.testing.assert_allclose(normalised, [-6.5, 1.0, 1.0], atol=1e-6)


def test_cohort_statistics_hand_numbers():
    means, stds = cohort_statistics(length_normalise(HAND_EMB), HAND_COHORT, top_n=2)
    np.testing.assert_allclose(means, [0.8, 0.9], atol=1e-7)
    np.testing.assert_allclose(stds, [0.2, 0.1], atol=1e-7)


def test_top_n_is_capped_at_the_cohort_size():
    # top 300 of a 4-speaker cohort = all 4: e's scores [1, 0.6, 0, -1]: mean 0.15
    means, _ = cohort_statistics(length_normalise(HAND_EMB[:1]), HAND_COHORT, top_n=4)
    capped, _ = asnorm_score(["e"], ["t"], {"e": 0, "t": 1}, HAND_EMB, HAND_COHORT, top_n=300)
    assert means[0] == pytest.approx(0.15)
    assert capped[0] == pytest.approx(reference_asnorm(HAND_EMB[0], HAND_EMB[1], HAND_COHORT, 4))


@pytest.mark.parametrize("top_n", [2, 7, 25])
def test_asnorm_equals_per_trial_reference_on_random_data(top_n):
    rng = np.random.default_rng(top_n)
    emb = rng.normal(size=(30, 12)).astype(np.float32)
    cohort = rng.normal(size=(25, 12)).astype(np.float32)
    ids = {f"u{i}": i for i in range(30)}
    pairs = rng.integers(0, 30, size=(200, 2))
    enroll, test = [f"u{i}" for i in pairs[:, 0]], [f"u{j}" for j in pairs[:, 1]]
    normalised, raw = asnorm_score(enroll, test, ids, emb, cohort, top_n=top_n)
    expected = [reference_asnorm(emb[i].astype(np.float64), emb[j].astype(np.float64),
                                 cohort.astype(np.float64), top_n) for i, j in pairs]
    assert np.allclose(normalised, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(raw, cosine_score(enroll, test, ids, emb), atol=1e-6)


def test_asnorm_needs_two_cohort_scores():
    with pytest.raises(RecipeError, match="--top-n of at least 2"):
        asnorm_score(["e"], ["t"], {"e": 0, "t": 1}, HAND_EMB, HAND_COHORT, top_n=1)


def test_duplicate_cohort_is_an_error_naming_the_id():
    flat = np.array([[1, 0], [1, 0]], dtype=np.float32)
    with pytest.raises(RecipeError, match="top-2 cohort scores of e are all equal"):
        asnorm_score(["e"], ["t"], {"e": 0, "t": 1}, HAND_EMB, flat, top_n=2)


def test_mean_subtraction_hand_numbers():
    # (2, 1) and (1, 2) have cosine 0.8; less their mean (1.5, 1.5) they point opposite ways.
    emb = np.array([[2, 1], [1, 2]], dtype=np.float32)
    assert cosine_score(["a"], ["b"], {"a": 0, "b": 1}, emb)[0] == pytest.approx(0.8)
    centred = subtract_mean(emb, emb.mean(axis=0))
    assert cosine_score(["a"], ["b"], {"a": 0, "b": 1}, centred)[0] == pytest.approx(-1.0)


def test_embedding_mean_and_speaker_cohort(tmp_path):
    rng = np.random.default_rng(7)
    vectors = {f"spk{s}-utt{u}": rng.normal(size=6) for s in range(3) for u in range(4)}
    scp = write_vectors(tmp_path / "train", vectors)
    spk2utt = write_text(tmp_path / "spk2utt",
                         [f"spk{s} " + " ".join(f"spk{s}-utt{u}" for u in range(4))
                          for s in range(3)])
    stacked = np.stack([np.float32(v) for v in vectors.values()])
    mean = embedding_mean(scp)
    np.testing.assert_allclose(mean, stacked.mean(axis=0), atol=1e-6)
    for m in (None, mean):
        speakers, cohort = speaker_cohort(scp, spk2utt, m)
        assert speakers == ["spk0", "spk1", "spk2"]
        centred = stacked - (0 if m is None else m)
        unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
        np.testing.assert_allclose(cohort, unit.reshape(3, 4, 6).mean(axis=1), atol=1e-6)


def test_cohort_speaker_without_embeddings_is_an_error(tmp_path):
    scp = write_vectors(tmp_path / "train", {"a-1": np.ones(3)})
    spk2utt = write_text(tmp_path / "spk2utt", ["a a-1", "b b-1"])
    with pytest.raises(RecipeError, match=r"1 utterance\(s\) of .*spk2utt have no embedding .* "
                                          r"e.g. b-1; embed the whole training set first"):
        speaker_cohort(scp, spk2utt)


def run_module(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                          env=dict(os.environ),
                          capture_output=True, text=True)


@pytest.fixture
def small_sets(tmp_path):
    """A training set (4 speakers x 3 utterances) and an evaluation set with labelled trials;
    embeddings share a common offset, as real ones do, so mean subtraction matters."""
    rng = np.random.default_rng(11)
    offset = rng.normal(size=8) * 3
    centres = rng.normal(size=(7, 8))

    def utterances(speakers, per_speaker):
        return {f"spk{s}-u{u}": centres[s] + offset + 0.5 * rng.normal(size=8)
                for s in speakers for u in range(per_speaker)}

    train = utterances(range(4), 3)
    (tmp_path / "train_emb").mkdir()
    (tmp_path / "eval_emb").mkdir()
    train_scp = write_vectors(tmp_path / "train_emb/xvector", train)
    spk2utt = write_text(tmp_path / "spk2utt",
                         [f"spk{s} " + " ".join(f"spk{s}-u{u}" for u in range(3))
                          for s in range(4)])
    evaluation = utterances(range(4, 7), 4)
    eval_scp = write_vectors(tmp_path / "eval_emb/xvector", evaluation)
    ids = list(evaluation)
    (tmp_path / "vox1_o").mkdir()
    trials = write_text(tmp_path / "vox1_o/trials", [
        f"{a} {b} {'target' if a[:4] == b[:4] else 'nontarget'}"
        for i, a in enumerate(ids) for b in ids[i + 1:]])
    return dict(train=train, train_scp=train_scp, spk2utt=spk2utt, eval=evaluation,
                eval_scp=eval_scp, trials=trials, out=tmp_path / "scores", root=tmp_path)


def test_score_entry_point_asnorm_matches_reference(small_sets):
    s = small_sets
    proc = run_module("pytorch_modules.bin.score", "--trials", s["trials"],
                      "--enroll-scp", s["eval_scp"], "--test-scp", s["eval_scp"],
                      "--cohort-scp", s["train_scp"], "--cohort-spk2utt", s["spk2utt"],
                      "--mean-scp", s["train_scp"], "--top-n", 3, "--name", "vox1_o_asnorm",
                      "--scores-out", s["out"] / "a.scores",
                      "--results-out", s["out"] / "a.results")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("vox1_o_asnorm: EER ")
    mean = np.mean([np.float32(v) for v in s["train"].values()], axis=0)
    cohort = [np.mean([(np.float32(v) - mean) / np.linalg.norm(np.float32(v) - mean)
                       for k, v in s["train"].items() if k.startswith(f"spk{spk}-")], axis=0)
              for spk in range(4)]
    for line in (s["out"] / "a.scores").read_text().splitlines():
        e, t, score = line.split()
        expected = reference_asnorm(np.float32(s["eval"][e]) - mean,
                                    np.float32(s["eval"][t]) - mean, cohort, 3)
        assert float(score) == pytest.approx(expected, abs=2e-5)
    results = read_results(s["out"] / "a.results")
    assert results["name"] == "vox1_o_asnorm"
    assert (results["mean_subtracted"], results["cohort_size"], results["top_n"]) == (
        "true", "4", "3")


def test_make_cohort_and_score_asnorm_step(small_sets):
    """make_cohort writes the cohort dir; steps/score_asnorm.sh scores with it, and its scores
    equal those of score.py making the cohort on the fly."""
    s = small_sets
    cohort_dir = s["root"] / "cohort"
    proc = run_module("pytorch_modules.bin.make_cohort", s["spk2utt"], s["train_scp"], cohort_dir)
    assert proc.returncode == 0, proc.stderr
    assert "cohort of 4 speakers from 12 utterances" in proc.stdout
    assert sorted(dict(kaldiio.load_scp(str(cohort_dir / "xvector_meansub.scp")))) == [
        "spk0", "spk1", "spk2", "spk3"]
    assert list(dict(kaldiio.load_scp(str(cohort_dir / "mean.scp")))) == ["mean"]
    emb_dir = s["root"] / "eval_emb"
    step = subprocess.run(["steps/score_asnorm.sh", "--top-n", "3", s["trials"], str(cohort_dir),
                           str(emb_dir), str(emb_dir), str(s["out"])],
                          cwd=ROOT, capture_output=True, text=True)
    assert step.returncode == 0, step.stderr
    assert step.stdout.startswith("vox1_o_asnorm: EER ")
    on_the_fly = run_module("pytorch_modules.bin.score", "--trials", s["trials"],
                            "--enroll-scp", s["eval_scp"], "--test-scp", s["eval_scp"],
                            "--cohort-scp", s["train_scp"], "--cohort-spk2utt", s["spk2utt"],
                            "--mean-scp", s["train_scp"], "--top-n", 3,
                            "--scores-out", s["out"] / "b.scores",
                            "--results-out", s["out"] / "b.results")
    assert on_the_fly.returncode == 0, on_the_fly.stderr

    def scores(name):
        return np.array([float(line.split()[2])
                         for line in (s["out"] / name).read_text().splitlines()])
    # The cohort read back from make_cohort's ark and the one made on the fly differ in
    # float32 rounding, which the float32 cohort product carries into the statistics.
    np.testing.assert_allclose(scores("vox1_o_asnorm.scores"), scores("b.scores"), atol=1e-5)


def test_score_asnorm_step_without_cohort_says_how_to_make_it(small_sets):
    s = small_sets
    step = subprocess.run(["steps/score_asnorm.sh", s["trials"], str(s["root"] / "nowhere"),
                           str(s["root"] / "eval_emb"), str(s["root"] / "eval_emb"),
                           str(s["out"])], cwd=ROOT, capture_output=True, text=True)
    assert step.returncode == 1
    assert "nowhere/mean.scp does not exist; make the cohort first" in step.stderr


def test_float32_cohort_product_stays_within_1e_4_of_float64():
    rng = np.random.default_rng(5)
    unit = length_normalise(rng.normal(size=(300, 256)))
    cohort = length_normalise(rng.normal(size=(500, 256)) + 0.5 * rng.normal(size=256))
    means, stds = cohort_statistics(unit, cohort, top_n=50)
    exact = asnorm_module.top_statistics(unit, np.arange(len(unit)), np.float64(cohort), 50)
    assert stds.min() > asnorm_module.FLOAT32_MIN_SPREAD   # this case takes the float32 path
    assert np.abs(means - exact[0]).max() < 1e-6 and np.abs(stds - exact[1]).max() < 1e-6
    # a normalised score moves by (difference of means) / std: well under 1e-4
    assert (np.abs(means - exact[0]) / stds).max() < 1e-4


def test_narrow_cohort_rows_are_computed_again_in_float64():
    rng = np.random.default_rng(6)
    base = rng.normal(size=64)
    # a cohort of near-copies: every top-N spread is far below FLOAT32_MIN_SPREAD
    cohort = length_normalise(base + 1e-3 * rng.normal(size=(40, 64)))
    unit = length_normalise(base + 0.5 * rng.normal(size=(5, 64)))
    means, stds = cohort_statistics(unit, cohort, top_n=10)
    assert stds.max() < asnorm_module.FLOAT32_MIN_SPREAD
    exact = asnorm_module.top_statistics(unit, np.arange(len(unit)), np.float64(cohort), 10)
    np.testing.assert_array_equal(means, exact[0])
    np.testing.assert_array_equal(stds, exact[1])


def test_score_asnorm_step_without_mean_subtraction_uses_the_plain_cohort(small_sets):
    s = small_sets
    cohort_dir = s["root"] / "cohort_plain"
    assert run_module("pytorch_modules.bin.make_cohort", s["spk2utt"], s["train_scp"],
                      cohort_dir).returncode == 0
    emb_dir = s["root"] / "eval_emb"
    step = subprocess.run(["steps/score_asnorm.sh", "--top-n", "3", "--subtract-mean", "false",
                           "--name", "plain", s["trials"], str(cohort_dir), str(emb_dir),
                           str(emb_dir), str(s["out"])], cwd=ROOT, capture_output=True, text=True)
    assert step.returncode == 0, step.stderr
    direct = run_module("pytorch_modules.bin.score", "--trials", s["trials"],
                        "--enroll-scp", s["eval_scp"], "--test-scp", s["eval_scp"],
                        "--cohort-scp", cohort_dir / "xvector.scp", "--top-n", 3,
                        "--scores-out", s["out"] / "direct.scores",
                        "--results-out", s["out"] / "direct.results")
    assert direct.returncode == 0, direct.stderr
    assert (s["out"] / "plain.scores").read_text() == (s["out"] / "direct.scores").read_text()
