"""The PLDA back-end (pytorch_modules/scoring/plda.py) against direct computations on Gaussian data
whose answer is known: the EM's covariances against the model the data was drawn from, the LLR
against the two-covariance model's joint Gaussian densities (scipy), the LDA against scipy's
generalised eigenproblem, PLDA against cosine where the within-speaker noise is anisotropic;
and the entry point and steps/score_plda.sh through real arks."""
import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
from scipy.linalg import eigh
from scipy.stats import multivariate_normal

from pytorch_modules.errors import RecipeError
from pytorch_modules.scoring import plda
from pytorch_modules.scoring.cosine import read_results
from pytorch_modules.scoring.metrics import compute_eer

from tiny_data import scratch_recipe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_covariance(rng, dim, scale=1.0, floor=0.2):
    a = rng.normal(size=(dim, dim))
    return scale * (a @ a.T / dim + floor * np.eye(dim))


def draw(rng, mean, between, within, num_speakers, counts=(2, 9)):
    """Utterance vectors mean + y_s + e of speakers y_s ~ N(0, between), e ~ N(0, within);
    each speaker has counts[0]..counts[1] utterances.  Returns (x, labels, y, e)."""
    dim = len(mean)
    n = rng.integers(counts[0], counts[1] + 1, size=num_speakers)
    y = rng.multivariate_normal(np.zeros(dim), between, size=num_speakers)
    labels = np.repeat(np.arange(num_speakers), n)
    e = rng.multivariate_normal(np.zeros(dim), within, size=len(labels))
    return mean + y[labels] + e, labels, y, e


# -- the two-covariance model ------------------------------------------------------------------

def test_em_converges_to_the_covariances_the_data_was_drawn_from():
    """3,000 speakers of 2-9 utterances in 4 dimensions.  The EM's estimates approach the true
    B and W as the data grows (300 -> 3,000 speakers) and end within the sampling error of
    the draws: within 2% of the scatter of the drawn noise e (16,500 utterances) and 6% of
    that of the drawn speaker variables y (3,000 speakers; their relative sampling error is
    about sqrt(2/3000) = 2.6% per entry), whose scatters are what the ML estimate tracks.  The
    log-likelihood (Kaldi's ComputeObjf) never decreases over the iterations."""
    rng = np.random.default_rng(0)
    dim = 4
    between, within = random_covariance(rng, dim, 2.0), random_covariance(rng, dim, 0.5)
    mean = rng.normal(size=dim)
    x, labels, y, e = draw(rng, mean, between, within, 3000)
    err = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)

    small = labels < 300
    model_small = plda.Plda.fit(x[small], labels[small], em_iters=30)
    history = []
    model = plda.Plda.fit(x, labels, em_iters=30, history=history)
    assert np.all(np.diff(history) >= -1e-9)
    assert err(model.between, between) < err(model_small.between, between)
    assert err(model.within, within) < err(model_small.within, within)
    assert err(model.within, np.cov(e.T, bias=True)) < 0.02
    assert err(model.between, np.cov(y.T, bias=True)) < 0.06
    assert err(model.within, within) < 0.03 and err(model.between, between) < 0.10
    # The mean is the mean of the speaker means (Kaldi's, class-weighted).
    np.testing.assert_allclose(model.mean, np.mean([x[labels == s].mean(axis=0)
                                                    for s in range(3000)], axis=0))
    # Kaldi's 10 iterations from B = W = I are close to converged on such data.
    ten = plda.Plda.fit(x, labels, em_iters=10)
    assert err(ten.between, model.between) < 0.01 and err(ten.within, model.within) < 0.01


def test_the_transform_makes_within_unit_and_between_diagonal():
    rng = np.random.default_rng(1)
    dim = 5
    between, within = random_covariance(rng, dim, 3.0), random_covariance(rng, dim)
    model = plda.Plda(rng.normal(size=dim), between, within)
    a = model.transform
    np.testing.assert_allclose(a @ within @ a.T, np.eye(dim), atol=1e-10)
    np.testing.assert_allclose(a @ between @ a.T, np.diag(model.psi), atol=1e-10)
    assert np.all(np.diff(model.psi) <= 0)
    # psi are the generalised eigenvalues of (B, W)
    np.testing.assert_allclose(model.psi, eigh(between, within, eigvals_only=True)[::-1])


def joint_llr(enroll, test, mean, between, within):
    """log p(enroll..., test | one speaker) - log p(enroll... | one speaker) - log p(test),
    the two-covariance model's densities written out: utterances of one speaker are jointly
    Gaussian with covariance B + W on the diagonal blocks and B off it."""
    def logpdf(vectors):
        k = len(vectors)
        cov = np.kron(np.ones((k, k)), between) + np.kron(np.eye(k), within)
        return multivariate_normal(np.tile(mean, k), cov).logpdf(np.concatenate(vectors))
    return logpdf(list(enroll) + [test]) - logpdf(list(enroll)) - logpdf([test])


@pytest.mark.parametrize("num_enroll", [1, 3])
def test_llr_is_the_closed_form_two_covariance_ratio(num_enroll):
    """Kaldi's LLR of the mean of n enrollment utterances (scored with n) against a test
    utterance equals the ratio of the joint densities of all n + 1 utterances (the mean is a
    sufficient statistic of the speaker), for targets and nontargets alike."""
    rng = np.random.default_rng(2)
    dim = 4
    between, within = random_covariance(rng, dim, 2.0), random_covariance(rng, dim, 0.7)
    mean = rng.normal(size=dim)
    model = plda.Plda(mean, between, within)
    x, labels, _, _ = draw(rng, mean, between, within, 6, counts=(num_enroll + 1,) * 2)
    for s in range(6):
        enroll = x[labels == s][:num_enroll]
        for test in (x[labels == s][num_enroll], x[labels == (s + 1) % 6][0]):
            u_e = model.transform_vectors(enroll.mean(axis=0)[None], num_enroll,
                                          normalise_length=False)
            u_t = model.transform_vectors(test[None], normalise_length=False)
            llr = model.llr(u_e, num_enroll, u_t)[0]
            assert llr == pytest.approx(joint_llr(enroll, test, mean, between, within),
                                        abs=1e-8)
    # One utterance on each side: the ratio is symmetric.
    a, b = (model.transform_vectors(v[None], normalise_length=False) for v in x[:2])
    assert model.llr(a, 1, b)[0] == pytest.approx(model.llr(b, 1, a)[0], abs=1e-10)


def test_length_normalisation_inside_plda_is_kaldis():
    """Scaled so that u' (psi + I/n)^-1 u = dim, the covariance of the mean of n utterances."""
    rng = np.random.default_rng(3)
    model = plda.Plda(np.zeros(3), random_covariance(rng, 3, 2.0), random_covariance(rng, 3))
    x = rng.normal(size=(5, 3))
    for n in (1, 4):
        u = model.transform_vectors(x, n)
        raw = model.transform_vectors(x, n, normalise_length=False)
        np.testing.assert_allclose(np.sum(u * u / (model.psi + 1 / n), axis=1), 3.0)
        np.testing.assert_allclose(u / np.linalg.norm(u, axis=1, keepdims=True),
                                   raw / np.linalg.norm(raw, axis=1, keepdims=True))


# -- LDA and the whole back-end -------------------------------------------------------------------

def test_lda_solves_the_generalised_eigenproblem_of_the_scatter_matrices():
    """The LDA rows are the leading generalised eigenvectors of (between, within) scatter,
    computed here with scipy on Kaldi's utterance-weighted statistics, scaled so that the
    projected within-class covariance is unit."""
    rng = np.random.default_rng(4)
    x, labels, _, _ = draw(rng, rng.normal(size=6), random_covariance(rng, 6, 3.0),
                           random_covariance(rng, 6), 40, counts=(3, 6))
    lda = plda.lda_transform(x, labels, 3)
    c = x - x.mean(axis=0)
    means = np.stack([c[labels == s].mean(axis=0) for s in range(40)])
    counts = np.bincount(labels)
    between = (means.T * counts) @ means / len(x)
    within = c.T @ c / len(x) - between
    values, vectors = eigh(between, within)
    expected = vectors[:, ::-1][:, :3].T
    for row, want in zip(lda, expected):
        np.testing.assert_allclose(row, want * np.sign(row @ want), atol=1e-8)
    np.testing.assert_allclose(lda @ within @ lda.T, np.eye(3), atol=1e-8)


def test_lda_dimension_is_capped_by_the_training_speakers():
    rng = np.random.default_rng(5)
    x, labels, _, _ = draw(rng, np.zeros(8), np.eye(8), np.eye(8), 4)
    notes = []
    backend = plda.PldaBackend.fit(x, labels, plda.PldaOptions(lda_dim=200), log=notes.append)
    assert backend.lda.shape == (3, 8) and backend.dim == 3
    assert notes == ["LDA to 3 dimensions, not 200: the training speakers span only 3"]
    assert plda.PldaBackend.fit(x, labels, plda.PldaOptions(lda_dim=0)).lda is None
    with pytest.raises(RecipeError, match="at least 2 training speakers"):
        plda.PldaBackend.fit(x[labels == 0], labels[labels == 0])


def anisotropic_speakers(rng, num_speakers, utts, dim=20):
    """Speakers y ~ N(0, I) in 20 dimensions, and utterance noise of variance 30 along 4 fixed
    directions (a channel) but 0.05 elsewhere: the speakers differ most where the noise is
    small, and the noise dominates every vector's length and angle."""
    basis = np.linalg.qr(np.random.default_rng(99).normal(size=(dim, dim)))[0]
    noise_sd = np.where(np.arange(dim) < 4, np.sqrt(30.0), np.sqrt(0.05))
    y = rng.normal(size=(num_speakers, dim))
    labels = np.repeat(np.arange(num_speakers), utts)
    e = (rng.normal(size=(len(labels), dim)) * noise_sd) @ basis.T
    return 3.0 + y[labels] + e, labels


def pair_eer(scores_matrix, labels):
    i, j = np.triu_indices(len(labels), 1)
    return compute_eer(scores_matrix[i, j], (labels[i] == labels[j]).astype(int))[0]


def test_plda_beats_cosine_where_within_speaker_noise_is_anisotropic():
    """60 training and 20 unseen test speakers of anisotropic_speakers.  Cosine of the
    mean-subtracted vectors is near chance (the channel directions dominate the angle); the
    PLDA back-end, which learns that those directions carry no speaker, separates the unseen
    speakers almost perfectly.  Seeds 6-13: cosine 30-37%, PLDA 0.0-1.5%."""
    rng = np.random.default_rng(6)
    train, train_labels = anisotropic_speakers(rng, 60, 8)
    test, test_labels = anisotropic_speakers(rng, 20, 4)
    mean = train.mean(axis=0)
    unit = (test - mean) / np.linalg.norm(test - mean, axis=1, keepdims=True)
    cosine_eer = pair_eer(unit @ unit.T, test_labels)
    backend = plda.PldaBackend.fit(train, train_labels)
    u = backend.prepare(test)
    n = len(u)
    llr = backend.plda.llr(np.repeat(u, n, axis=0), 1, np.tile(u, (n, 1))).reshape(n, n)
    plda_eer = pair_eer(llr, test_labels)
    assert cosine_eer > 0.25 and plda_eer < 0.03


# -- the entry point and steps/score_plda.sh ------------------------------------------------------

def write_vectors(directory, ids, vectors):
    os.makedirs(directory, exist_ok=True)
    scp = os.path.join(directory, "xvector.scp")
    with kaldiio.WriteHelper(f"ark,scp:{directory}/xvector.ark,{scp}") as writer:
        for utt, vec in zip(ids, vectors):
            writer(utt, vec.astype(np.float32))
    return scp


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    """Training embeddings of 60 speakers, and an evaluation set of 10 unseen speakers (4
    utterances each) with every pair as a trial and utt2spk beside the trials."""
    rng = np.random.default_rng(7)
    train, train_labels = anisotropic_speakers(rng, 60, 8)
    test, test_labels = anisotropic_speakers(rng, 10, 4)
    train_ids = [f"t{s:02d}-{i:03d}" for i, s in enumerate(train_labels)]
    test_ids = [f"e{s:02d}-{i:03d}" for i, s in enumerate(test_labels)]
    write_vectors(tmp_path / "exp/embeddings_train", train_ids, train)
    write_vectors(tmp_path / "exp/embeddings_eval", test_ids, test)
    write_lines(tmp_path / "data/train/utt2spk", [f"{u} {u[:3]}" for u in train_ids])
    pairs = [(a, b) for k, a in enumerate(test_ids) for b in test_ids[k + 1:]]
    write_lines(tmp_path / "data/trials_o/trials",
                [f"{a} {b} {'target' if a[:3] == b[:3] else 'nontarget'}" for a, b in pairs])
    write_lines(tmp_path / "data/trials_o/utt2spk", [f"{u} {u[:3]}" for u in test_ids])
    return dict(train=train.astype(np.float32).astype(np.float64), labels=train_labels,
                test={u: v for u, v in zip(test_ids, test.astype(np.float32))},
                pairs=pairs, ids=test_ids)


def run(cwd, *args):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"})


def score_plda(cwd, trials, out, *options, train_utt2spk="data/train/utt2spk"):
    """bin/score_plda on the corpus's train and eval embeddings (the eval scp on both sides),
    writing out.scores and out.results."""
    return run(cwd, sys.executable, "-m", "pytorch_modules.bin.score_plda", "--trials", trials,
               "--train-scp", "exp/embeddings_train/xvector.scp",
               "--train-utt2spk", train_utt2spk,
               "--enroll-scp", "exp/embeddings_eval/xvector.scp",
               "--test-scp", "exp/embeddings_eval/xvector.scp", "--scores-out", f"{out}.scores",
               "--results-out", f"{out}.results", *options)


def read_score_lines(path):
    return [(a, b, float(s)) for a, b, s in (line.split() for line in open(path))]


def test_the_entry_point_writes_the_backends_llrs_and_the_results_of_score(tmp_path, corpus):
    proc = score_plda(tmp_path, "data/trials_o/trials", "out/o", "--bootstrap-replicates", "50")
    assert proc.returncode == 0, proc.stderr
    backend = plda.PldaBackend.fit(corpus["train"], corpus["labels"])
    lines = read_score_lines(tmp_path / "out/o.scores")
    assert [(a, b) for a, b, _ in lines] == corpus["pairs"]
    for a, b, value in lines:
        u = backend.prepare(np.stack([corpus["test"][a], corpus["test"][b]]))
        assert value == pytest.approx(backend.plda.llr(u[:1], 1, u[1:])[0], abs=1e-5)
    results = read_results(tmp_path / "out/o.results")
    labels = np.array([a[:3] == b[:3] for a, b in corpus["pairs"]], dtype=int)
    eer = compute_eer(np.array([v for _, _, v in lines]), labels)[0]
    assert float(results["eer_percent"]) == pytest.approx(100 * eer, abs=1e-3)
    assert eer < 0.03
    # The keys of pytorch_modules.bin.score's results (intervals from the speaker bootstrap),
    # and what the back-end was.
    for key in ("name", "trials", "eer_percent", "min_dcf_p0.01", "min_dcf_p0.001",
                "eer_threshold", "eer_kaldi_percent", "eer_percent_ci_low",
                "eer_percent_ci_high", "min_dcf_p0.01_ci_low", "bootstrap_unit"):
        assert key in results, key
    assert (results["name"], results["bootstrap_unit"], results["bootstrap_clusters"]) == \
        ("trials_o", "speaker", "10")
    assert (results["backend"], results["lda_dim"], results["plda_em_iters"],
            results["mean_subtracted"], results["plda_train_utts"],
            results["plda_train_speakers"]) == ("plda", "20", "10", "true", "480", "60")


def test_models_are_the_mean_of_their_utterances_scored_with_their_count(tmp_path, corpus):
    """SITW-style enrollment: each model the plain mean of its raw embeddings (ivector-mean),
    then the LLR with n = its utterance count; the bootstrap resamples the models."""
    ids = corpus["ids"]
    # models m0..m9 of the first 3 utterances of each speaker; the 4th of each is a test
    models = {f"m{k}": ids[4 * k:4 * k + 3] for k in range(10)}
    tests = ids[3::4]
    write_lines(tmp_path / "data/enroll/spk2utt", [f"{m} {' '.join(u)}" for m, u in models.items()])
    trials = [(m, t) for m in models for t in tests]
    write_lines(tmp_path / "data/sitw/trials",
                [f"{m} {t} {'target' if models[m][0][:3] == t[:3] else 'nontarget'}"
                 for m, t in trials])
    proc = score_plda(tmp_path, "data/sitw/trials", "out/s", "--enroll-spk2utt",
                      "data/enroll/spk2utt", "--bootstrap-replicates", "20", "--lda-dim", "10",
                      "--em-iters", "5")
    assert proc.returncode == 0, proc.stderr
    backend = plda.PldaBackend.fit(corpus["train"], corpus["labels"],
                                   plda.PldaOptions(lda_dim=10, em_iters=5))
    lines = read_score_lines(tmp_path / "out/s.scores")
    assert [(m, t) for m, t, _ in lines] == trials
    for m, t, value in lines:
        n = len(models[m])
        enroll = np.mean([corpus["test"][u].astype(np.float64) for u in models[m]], axis=0)
        u_e = backend.prepare(enroll[None], n)
        u_t = backend.prepare(corpus["test"][t][None])
        assert value == pytest.approx(backend.plda.llr(u_e, n, u_t)[0], abs=1e-5)
        # the count matters: scored as one utterance, the LLR differs
        assert abs(value - backend.plda.llr(backend.prepare(enroll[None], 1), 1, u_t)[0]) > 1e-3
    results = read_results(tmp_path / "out/s.results")
    assert results["bootstrap_unit"] == "enrollment_model" and results["lda_dim"] == "10"


def test_score_plda_sh_names_the_set_and_passes_its_options(tmp_path, corpus):
    scratch_recipe(tmp_path)
    proc = run(tmp_path, "steps/score_plda.sh", "--subtract-mean", "false", "--lda-dim", "0",
               "data/trials_o/trials", "data/train", "exp/embeddings_train",
               "exp/embeddings_eval", "exp/embeddings_eval", "exp/scores")
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path / "exp/scores/trials_o_plda.results")
    assert (results["name"], results["mean_subtracted"], results["lda_dim"]) == \
        ("trials_o_plda", "false", "0")
    backend = plda.PldaBackend.fit(corpus["train"], corpus["labels"],
                                   plda.PldaOptions(lda_dim=0, subtract_mean=False))
    a, b, value = read_score_lines(tmp_path / "exp/scores/trials_o_plda.scores")[0]
    u = backend.prepare(np.stack([corpus["test"][a], corpus["test"][b]]))
    assert value == pytest.approx(backend.plda.llr(u[:1], 1, u[1:])[0], abs=1e-5)
    # Wrong number of arguments: the usage text; no training embeddings: what makes them.
    proc = run(tmp_path, "steps/score_plda.sh", "data/trials_o/trials", "data/train")
    assert proc.returncode == 1 and "Usage: steps/score_plda.sh" in proc.stderr
    proc = run(tmp_path, "steps/score_plda.sh", "data/trials_o/trials", "data/train",
               "exp/nothing", "exp/embeddings_eval", "exp/embeddings_eval", "exp/scores")
    assert proc.returncode == 1 and "exp/nothing/xvector.scp does not exist" in proc.stderr


def test_training_utterances_without_a_speaker_are_refused(tmp_path, corpus):
    write_lines(tmp_path / "data/other/utt2spk", ["x-1 x", "x-2 x"])
    proc = score_plda(tmp_path, "data/trials_o/trials", "o",
                      train_utt2spk="data/other/utt2spk")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "480 utterance(s) of exp/embeddings_train/xvector.scp have no speaker in " \
           "data/other/utt2spk" in proc.stderr
