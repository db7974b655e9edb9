"""verify, embed and calibrate with a tiny model: the pipeline from audio files of any rate and
channel count, the threshold sidecar, and the errors."""
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from pytorch_modules.deploy.verification import (
    operating_threshold,
    read_threshold,
    threshold_path,
    write_threshold,
)
from pytorch_modules.errors import RecipeError
from pytorch_modules.features.spectrogram import Spectrogram, parse_options_file
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.inference import Embedder, embed, load_embedding_model, read_audio_file
from pytorch_modules.scoring.cosine import read_scores

from tiny_model import make_model_file, run_module, write_voice


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    model = root / "final.pt"
    make_model_file(model)
    return dict(root=root, model=model,
                a=write_voice(root / "a.wav", seed=0), b=write_voice(root / "b.wav", seed=1),
                stereo8k=write_voice(root / "a8k.wav", rate=8000, channels=2, seed=0))


def test_same_file_twice_scores_one_and_is_accepted(setup):
    write_threshold(threshold_path(setup["model"]), {"threshold": "0.5", "operating_point": "eer",
                                                     "set": "vox1_o"})
    proc = run_module("pytorch_modules.bin.verify", "--model", setup["model"],
                      setup["a"], setup["a"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert (lines[0].startswith("score ")
            and float(lines[0].split()[1]) == pytest.approx(1.0, abs=1e-5))
    assert lines[1] == f"threshold 0.500000 (eer on vox1_o, {threshold_path(setup['model'])})"
    assert lines[2] == "decision accept"


def test_embedder_equals_the_recipe_pipeline(setup):
    """verify's embedding of a 16 kHz mono file is the recipe's: features of conf/spectrogram.conf,
    then the network on the whole utterance."""
    import soundfile
    samples, _ = soundfile.read(setup["a"], dtype="float32")
    feats = Spectrogram(parse_options_file("conf/spectrogram.conf"))(samples)
    expected = embed(load_embedding_model(setup["model"]), feats)
    got, notes = Embedder(setup["model"]).embed_file(setup["a"])
    assert notes == []
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_8khz_stereo_is_mixed_down_and_resampled(setup):
    options = parse_options_file("conf/spectrogram.conf")
    samples, notes = read_audio_file(setup["stereo8k"], options, "conf/spectrogram.conf")
    assert len(samples) == pytest.approx(1.2 * 16000, abs=2)
    assert notes == [f"{setup['stereo8k']}: mixed 2 channels down to mono",
                     f"{setup['stereo8k']}: resampled from 8000 Hz to 16000 Hz"]
    # the embedding of the file is that of its mixed-down, resampled samples
    embedder = Embedder(setup["model"])
    got, _ = embedder.embed_file(setup["stereo8k"])
    np.testing.assert_allclose(got, embed(embedder.model, embedder.spectrogram(samples)), atol=1e-6)
    assert got.shape == (16,) and np.isfinite(got).all()


def test_threshold_override_and_reject(setup):
    # A cosine never exceeds 1, so 1.5 rejects everything (a random model's scores are all
    # near 1, so a threshold between them would test nothing more).
    proc = run_module("pytorch_modules.bin.verify", "--model", setup["model"], "--threshold", "1.5",
                      setup["a"], setup["stereo8k"])
    assert proc.returncode == 0, proc.stderr
    score, threshold, decision = proc.stdout.splitlines()
    assert -1 <= float(score.split()[1]) <= 1
    assert threshold == "threshold 1.500000 (--threshold)" and decision == "decision reject"
    assert ("mixed 2 channels down to mono" in proc.stderr
            and "resampled from 8000 Hz" in proc.stderr)


def test_sidecar_round_trip_and_errors(tmp_path):
    path = tmp_path / "final.threshold"
    write_threshold(path, {"threshold": "0.25", "operating_point": "mindcf0.01",
                           "scores": "exp/my model/scores/vox1_o.scores"})
    entries = read_threshold(path)
    assert entries["threshold"] == 0.25 and entries["scores"] == "exp/my model/scores/vox1_o.scores"
    path.write_text("operating_point eer\n")
    with pytest.raises(RecipeError, match="holds no numeric 'threshold' line"):
        read_threshold(path)
    assert threshold_path("exp/m/final.pt").as_posix() == "exp/m/final.threshold"


def test_missing_model_and_audio_are_sentences(setup, tmp_path):
    proc = run_module("pytorch_modules.bin.verify", "--model", tmp_path / "none.pt",
                      setup["a"], setup["a"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"verify: {tmp_path / 'none.pt'} does not exist or is not a "
                                  f"file; give the final.pt that training wrote")
    options = parse_options_file("conf/spectrogram.conf")
    with pytest.raises(RecipeError, match=r"audio file .*nothing.wav' does not exist"):
        Embedder(setup["model"]).embed_file(tmp_path / "nothing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(RecipeError, match=r"cannot read audio file .*junk.wav"):
        read_audio_file(tmp_path / "junk.wav", options, "conf/spectrogram.conf")
    with pytest.raises(RecipeError, match=r"cannot read audio file .*Is a directory"):
        read_audio_file(tmp_path, options, "conf/spectrogram.conf")
    import torch
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(RecipeError, match="is not a model written by training"):
        load_embedding_model(tmp_path / "other.pt")


class _Pickled:
    """Any Python object: a file holding one could run code when unpickled."""


@pytest.mark.parametrize("make, words", [
    (lambda path, good: torch.save({"model": _Pickled()}, path),
     "it holds Python objects other than tensors, numbers, strings, lists and dicts, which "
     "the recipe never loads, since loading them could run code"),
    (lambda path, good: path.write_bytes(good.read_bytes()[:-2000]),
     "it is truncated (an incomplete copy or an interrupted write)"),
    (lambda path, good: path.write_text("not a model\n"), "it is not a PyTorch checkpoint"),
])
def test_an_unloadable_model_is_our_sentence_never_the_unsafe_advice(setup, tmp_path, make,
                                                                     words):
    """torch's own text suggests weights_only=False, the one thing never to do with a file of
    unknown origin; and verify has no previous checkpoint to fall back to."""
    model = tmp_path / "final.pt"
    make(model, setup["model"])
    proc = run_module("pytorch_modules.bin.verify", "--model", model, setup["a"], setup["a"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == (f"verify: cannot load {model}: {words}; give the final.pt that "
                           f"training wrote (exp/<model>/final.pt), or train the model again "
                           f"(./run.sh --stage 3)\n")
    assert "weights_only" not in proc.stderr and "previous" not in proc.stderr


def test_calibrate_writes_the_sidecar_verify_reads(setup, tmp_path):
    trials = tmp_path / "trials"
    trials.write_text("a b target\na c nontarget\nb c nontarget\nc d target\nd e target\n"
                      "d f nontarget\n")
    scores = tmp_path / "vox1_o.scores"
    scores.write_text("a b 0.9\na c 0.3\nb c 0.5\nc d 0.4\nd e 0.6\nd f 0.2\n")
    out = tmp_path / "m.threshold"
    proc = run_module("pytorch_modules.bin.calibrate", "--model", setup["model"],
                      "--scores", scores, "--trials", trials, "--operating-point", "eer",
                      "--out", out)
    assert proc.returncode == 0, proc.stderr
    entries = read_threshold(out)
    # targets 0.9, 0.6, 0.4; nontargets 0.5, 0.3, 0.2.  (P_miss, P_fa) accepting >= t:
    # 0.9 (2/3, 0), 0.6 (1/3, 0), 0.5 (1/3, 1/3) <- on P_miss = P_fa: EER 1/3 at t = 0.5
    assert entries["threshold"] == 0.5 and entries["set"] == "vox1_o"
    assert entries["operating_point"] == "eer" and entries["eer_percent"] == "33.3333"
    # minDCF(0.01) = min of P_miss + 99 P_fa: 1, 2/3, 1/3 (t = 0.6), 1/3 + 33, ... -> t = 0.6
    labels = np.array([1, 0, 0, 1, 1, 0])
    values = np.array([0.9, 0.3, 0.5, 0.4, 0.6, 0.2])
    threshold, extra = operating_threshold(values, labels, "mindcf0.01")
    assert threshold == 0.6 and extra == {"p_target": "0.01", "min_dcf": "0.3333"}
    with pytest.raises(RecipeError, match="unknown --operating-point 'dcf'"):
        operating_threshold(values, labels, "dcf")
    scores.write_text("a b 0.9\na c 0.3\n")
    with pytest.raises(RecipeError, match="has 2 lines but the trials have 6"):
        read_scores(scores, *read_trials(trials)[:2])


def test_embed_writes_ark_and_npy(setup, tmp_path):
    listing = tmp_path / "files.txt"
    listing.write_text(f"utt-a {setup['a']}\n{setup['b']}\n")
    proc = run_module("pytorch_modules.bin.embed", "--model", setup["model"], "--list", listing,
                      "--out-dir", tmp_path / "ark", setup["stereo8k"])
    assert proc.returncode == 0, proc.stderr
    vectors = dict(kaldiio.load_scp(str(tmp_path / "ark/xvector.scp")))
    assert list(vectors) == ["utt-a", setup["b"], setup["stereo8k"]]
    expected, _ = Embedder(setup["model"]).embed_file(setup["a"])
    np.testing.assert_allclose(vectors["utt-a"], expected, atol=1e-6)
    proc = run_module("pytorch_modules.bin.embed", "--model", setup["model"], "--format", "npy",
                      "--out-dir", tmp_path / "npy", setup["a"], setup["b"])
    assert proc.returncode == 0, proc.stderr
    matrix = np.load(tmp_path / "npy/embeddings.npy")
    assert matrix.shape == (2, 16) and matrix.dtype == np.float32
    assert (tmp_path / "npy/ids.txt").read_text().splitlines() == [setup["a"], setup["b"]]
    np.testing.assert_allclose(matrix[0], expected, atol=1e-6)


def test_feature_options_come_from_beside_the_model_or_its_training_config(setup, tmp_path,
                                                                           monkeypatch):
    """The features are found without the recipe's folders: beside the model first, then the
    file the training config names (relative to where the recipe ran), else a sentence."""
    make_model_file(tmp_path / "final.pt")
    conf = tmp_path / "spectrogram.conf"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match=r"no feature options for .*final.pt.*--feat-config"):
        Embedder(tmp_path / "final.pt")
    (tmp_path / "conf").mkdir()
    conf_named = tmp_path / "conf" / "spectrogram.conf"
    conf_named.write_text("--sample-frequency=16000\n--frame-length=20\n--frame-shift=10\n"
                          "--window-type=hamming\n--fft-length=320\n--normalize-mean=false\n")
    assert Embedder(tmp_path / "final.pt").feat_config == Path("conf/spectrogram.conf")
    conf.write_text("--sample-frequency=8000\n--frame-length=40\n--normalize-mean=false\n")
    embedder = Embedder(tmp_path / "final.pt")
    assert embedder.feat_config == conf and embedder.options.sample_frequency == 8000


# ---- the calibrated decision ---------------------------------------------------------------------

def recipe_frames(tmp_path, wavs):
    """utt2num_frames of the feature stage's job (bin/compute_spectrogram) for the wav files."""
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"utt{n} {w}\n" for n, w in enumerate(wavs)))
    proc = run_module("pytorch_modules.bin.compute_spectrogram", "--config",
                      "conf/spectrogram.conf", scp, tmp_path / "feats")
    assert proc.returncode == 0, proc.stderr
    frames = dict(line.split() for line in (tmp_path / "feats.utt2num_frames").read_text()
                  .splitlines())
    return [int(frames[f"utt{n}"]) for n in range(len(wavs))]


@pytest.mark.slow
def test_verify_decides_on_the_calibrated_llr(setup, tmp_path):
    from pytorch_modules.bin.verify import embed_with_frames
    from pytorch_modules.scoring import calibration
    model = tmp_path / "final.pt"
    make_model_file(model)
    a, short = setup["a"], write_voice(tmp_path / "short.wav", seconds=0.5, seed=3)
    cal = calibration.Calibration(offset=-2.5, scale=8.0, groups=("duration",),
                                  weights=(0.5, -0.25))
    calibration.write(tmp_path / "final.calibration", cal)
    write_threshold(threshold_path(model), {"threshold": "0.5", "operating_point": "eer"})
    proc = run_module("pytorch_modules.bin.verify", "--model", model, a, short)
    assert proc.returncode == 0, proc.stderr
    # the frames are the feature stage's (utt2num_frames) and the score the cosine
    frames = recipe_frames(tmp_path, [a, short])
    embedder = Embedder(model)
    assert [embed_with_frames(embedder, w)[1] for w in (a, short)] == frames
    (ea, _), (eb, _) = embedder.embed_file(a), embedder.embed_file(short)
    cos = float(ea @ eb / np.linalg.norm(ea) / np.linalg.norm(eb))
    llr = -2.5 + 8.0 * cos + 0.5 * np.log(min(frames)) - 0.25 * np.log(max(frames))
    score, llr_line, threshold, decision = proc.stdout.splitlines()
    assert float(score.split()[1]) == pytest.approx(cos, abs=1e-5)
    assert float(llr_line.split()[1]) == pytest.approx(llr, abs=1e-4)
    assert threshold == (f"threshold {np.log(99):.6f} (Bayes decision at p_target 0.01, "
                         f"{tmp_path / 'final.calibration'})")
    assert decision == f"decision {'accept' if llr >= np.log(99) else 'reject'}"
    # another prior moves the threshold: -logit(p)
    proc = run_module("pytorch_modules.bin.verify", "--model", model, "--p-target", "0.9", a, short)
    assert proc.stdout.splitlines()[2].startswith(f"threshold {-np.log(9):.6f} ")
    assert proc.stdout.splitlines()[3] == f"decision {'accept' if llr >= -np.log(9) else 'reject'}"
    # without the calibration: the cosine and the threshold sidecar, as before
    for flags in (["--no-calibration"], ["--threshold", "0.5"]):
        proc = run_module("pytorch_modules.bin.verify", "--model", model, *flags, a, short)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert len(lines) == 3 and lines[1].startswith("threshold 0.500000 (")


@pytest.mark.slow
def test_verify_asnorm_calibration_is_the_recipes_asnorm(setup, tmp_path):
    """A calibration of AS-norm scores with cohort-mean measures: verify's AS-norm score is
    bin/score.py's on the same embeddings and cohort, and its LLR the file's formula with the
    cohort means written out here."""
    import kaldiio

    from pytorch_modules.scoring import calibration
    model = tmp_path / "final.pt"
    make_model_file(model)
    a, b = setup["a"], setup["b"]
    embedder = Embedder(model)
    (ea, _), (eb, _) = embedder.embed_file(a), embedder.embed_file(b)
    rng = np.random.default_rng(2)
    cohort = (rng.normal(size=(12, ea.size)) + ea).astype(np.float32)
    mean = (0.3 * ea + 0.1 * rng.normal(size=ea.size)).astype(np.float32)
    kaldiio.save_ark(str(tmp_path / "e.ark"), {"a": ea, "b": eb}, scp=str(tmp_path / "e.scp"))
    kaldiio.save_ark(str(tmp_path / "c.ark"), {f"c{i}": (v - mean) for i, v in enumerate(cohort)},
                     scp=str(tmp_path / "cohort.scp"))
    kaldiio.save_ark(str(tmp_path / "m.ark"), {"mean": mean}, scp=str(tmp_path / "mean.scp"))
    (tmp_path / "trials").write_text("a b\n")
    proc = run_module("pytorch_modules.bin.score", "--trials", tmp_path / "trials",
                      "--enroll-scp", tmp_path / "e.scp", "--test-scp", tmp_path / "e.scp",
                      "--mean-scp", tmp_path / "mean.scp", "--cohort-scp", tmp_path / "cohort.scp",
                      "--top-n", "5", "--scores-out", tmp_path / "s", "--results-out",
                      tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    recipe_score = float((tmp_path / "s").read_text().split()[2])
    cal = calibration.Calibration(
        offset=0.5, scale=2.0, groups=("duration", "cohort_mean"), weights=(0.1, 0.2, 3.0, -1.0),
        backend="asnorm", cohort=calibration.Cohort(str(tmp_path / "cohort.scp"), 5,
                                                    str(tmp_path / "mean.scp")))
    calibration.write(tmp_path / "final.calibration", cal)
    proc = run_module("pytorch_modules.bin.verify", "--model", model, a, b)
    assert proc.returncode == 0, proc.stderr
    score, asnorm, llr, *_ = proc.stdout.splitlines()
    assert asnorm.startswith("asnorm ")
    assert float(asnorm.split()[1]) == pytest.approx(recipe_score, abs=2e-6)

    def top_mean(v):
        v = v.astype(np.float64) - mean
        c = cohort.astype(np.float64) - mean
        cos = c @ v / np.linalg.norm(c, axis=1) / np.linalg.norm(v)
        return np.sort(cos)[-5:].mean()

    frames = recipe_frames(tmp_path, [a, b])
    means = [top_mean(ea), top_mean(eb)]
    want = (0.5 + 2.0 * float(asnorm.split()[1]) + 0.1 * np.log(min(frames))
            + 0.2 * np.log(max(frames)) + 3.0 * min(means) - 1.0 * max(means))
    assert float(llr.split()[1]) == pytest.approx(want, abs=1e-4)
    # a cohort that is not there: a sentence, and the way out
    (tmp_path / "cohort.scp").unlink()
    proc = run_module("pytorch_modules.bin.verify", "--model", model, a, b)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        f"verify: cannot compute the AS-norm scores that {tmp_path / 'final.calibration'} was "
        f"fitted on: {tmp_path / 'cohort.scp'} does not exist")
    assert "--no-calibration" in proc.stderr
