"""Tests of local/make_demo_corpus.py: layout, audio format, determinism, trials, reruns.

A tiny corpus (3 dev + 3 test speakers, 2 sessions x 2 utterances of 0.6-1.2 s) is made once
per module; the tests read it.
"""

import filecmp
import importlib.util
import os
import re
import sys

import numpy as np
import pytest
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "make_demo_corpus", os.path.join(ROOT, "local", "make_demo_corpus.py"))
mdc = importlib.util.module_from_spec(_spec)
sys.modules["make_demo_corpus"] = mdc  # multiprocessing workers look the module up by name
_spec.loader.exec_module(mdc)

TINY = ["--num-dev-speakers", "3", "--num-test-speakers", "3", "--sessions-per-speaker", "2",
        "--utts-per-session", "2", "--num-trials", "20", "--min-dur", "0.6", "--max-dur", "1.2"]
WAV_PATH = re.compile(r"^(dev|test)/wav/id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav$")
TRIAL_LINE = re.compile(
    r"^[01] id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav$")
TOP_FILES = {"corpus_info.txt", "veri_test2.txt", "vox1_meta.csv"}


def make(out, *extra, seed=777, nj=1):
    return mdc.main(TINY + ["--seed", str(seed), "--nj", str(nj), *extra, str(out)])


def all_files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, _, names in os.walk(root) for n in names)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "corpus"
    assert make(out) == 0
    return out


def speakers(corpus, subset):
    return set(os.listdir(corpus / subset / "wav"))


def test_layout_matches_voxceleb1(corpus):
    files = all_files(corpus)
    wavs = [f for f in files if f not in TOP_FILES]
    assert set(files) - set(wavs) == TOP_FILES
    for path in wavs:
        assert WAV_PATH.match(path), path
    assert len(wavs) == 6 * 2 * 2
    # Utterances are numbered 00001, 00002, ... within each session.
    sessions = {}
    for path in wavs:
        sessions.setdefault(os.path.dirname(path), []).append(os.path.basename(path))
    assert len(sessions) == 6 * 2
    for names in sessions.values():
        assert sorted(names) == ["00001.wav", "00002.wav"]
    assert not os.path.exists(str(corpus) + ".tmp")


def test_wav_format_duration_and_level(corpus):
    for path in all_files(corpus):
        if not path.endswith(".wav"):
            continue
        info = sf.info(str(corpus / path))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            16000, 1, "PCM_16", "WAV"), path
        assert 0.6 <= info.frames / 16000 <= 1.2, (path, info.frames)
        audio, _ = sf.read(str(corpus / path))
        assert np.all(np.isfinite(audio))
        assert np.max(np.abs(audio)) < 0.99, path  # never clipped
        rms_db = 20 * np.log10(np.sqrt(np.mean(audio ** 2)))
        assert -40 < rms_db < -15, (path, rms_db)


def test_test_speakers_disjoint_from_dev(corpus):
    dev, test = speakers(corpus, "dev"), speakers(corpus, "test")
    assert len(dev) == 3 and len(test) == 3
    assert not dev & test
    meta = (corpus / "vox1_meta.csv").read_text().splitlines()
    assert meta[0].split("\t") == ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"]
    assert {tuple(row.split("\t")[i] for i in (0, 4)) for row in meta[1:]} == (
        {(s, "dev") for s in dev} | {(s, "test") for s in test})


def test_trials(corpus):
    lines = (corpus / "veri_test2.txt").read_text().splitlines()
    assert len(lines) == 20
    test_wav = corpus / "test" / "wav"
    pairs = set()
    for line in lines:
        assert TRIAL_LINE.match(line), line
        label, a, b = line.split()
        assert a != b
        assert (test_wav / a).is_file() and (test_wav / b).is_file()
        same_speaker = a.split("/")[0] == b.split("/")[0]
        assert same_speaker == (label == "1"), line
        if label == "1":
            # 12 cross-session pairs exist for 10 targets: all of them must be cross-session.
            assert a.split("/")[1] != b.split("/")[1], line
        pairs.add(frozenset((a, b)))
    assert len(pairs) == len(lines)  # no trial twice
    assert sum(line.startswith("1") for line in lines) == 10


def test_deterministic_and_independent_of_nj(corpus, tmp_path):
    again = tmp_path / "again"
    assert make(again, nj=2) == 0
    files = all_files(corpus)
    assert all_files(again) == files
    match, mismatch, errors = filecmp.cmpfiles(corpus, again, files, shallow=False)
    assert not mismatch and not errors

    other = tmp_path / "other"
    assert make(other, seed=778) == 0
    assert (other / "veri_test2.txt").read_text() != (corpus / "veri_test2.txt").read_text()
    assert all_files(other) != files  # different session ids
    a = sorted(p for p in all_files(corpus) if p.endswith(".wav"))[0]
    b = sorted(p for p in all_files(other) if p.endswith(".wav"))[0]
    assert (corpus / a).read_bytes() != (other / b).read_bytes()


def test_rerun_skips_refuses_and_overwrites(corpus, tmp_path, capsys):
    out = tmp_path / "c"
    assert make(out) == 0
    stamp = os.path.getmtime(out / "veri_test2.txt")
    capsys.readouterr()

    assert make(out) == 0  # same parameters: left alone
    assert "leaving it as it is" in capsys.readouterr().out
    assert os.path.getmtime(out / "veri_test2.txt") == stamp

    assert make(out, seed=5) == 1  # other parameters: refused
    err = capsys.readouterr().err
    assert "seed 777 there, 5 asked" in err and "--overwrite" in err
    assert "seed=777" in (out / "corpus_info.txt").read_text()

    assert make(out, "--overwrite", seed=5) == 0
    assert "seed=5" in (out / "corpus_info.txt").read_text()
    assert not os.path.exists(str(out) + ".tmp") and not os.path.exists(str(out) + ".old")

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    assert make(foreign) == 1  # a non-empty directory that is not a demo corpus
    assert "no corpus_info.txt" in capsys.readouterr().err
    assert all_files(foreign) == ["notes.txt"]


def test_impossible_trial_count_is_refused(tmp_path, capsys):
    args = TINY + ["--num-trials", "1000", str(tmp_path / "x")]
    assert mdc.main(args) == 1
    assert "more than the test set can give" in capsys.readouterr().err


def sklearn_eer(scores, labels):
    """The EER from scikit-learn's ROC points (the crossing of the segment that straddles
    P_miss = P_fa), independent of pytorch_modules/scoring/metrics.py."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    gap = (1 - tpr) - fpr
    i = int(np.argmax(gap <= 0))
    if gap[i] == 0:
        return 1 - tpr[i]
    alpha = gap[i - 1] / (gap[i - 1] - gap[i])
    return fpr[i - 1] + alpha * (fpr[i] - fpr[i - 1])


def numpy_mean_log_spectrum(path):
    """The mean over frames of the 161-bin log power spectrogram, written out with numpy
    (20-ms Hamming windows every 10 ms, whole windows, 320-point FFT, log floor 1e-10)."""
    x = sf.read(path, dtype="float64")[0]
    count = 1 + (len(x) - 320) // 160
    frames = np.stack([x[i * 160:i * 160 + 320] for i in range(count)]) * np.hamming(320)
    return np.log(np.maximum(np.abs(np.fft.rfft(frames, 320)) ** 2, 1e-10)).mean(axis=0)


def test_proxy_eer_of_one_vector_per_speaker_is_zero(corpus, monkeypatch):
    # One vector per speaker: every target scores 1 and every nontarget less, EER 0.
    def speaker_vector(spectrogram, path):
        return np.eye(161)[int(re.search(r"id(\d{5})", path).group(1)) % 161]

    monkeypatch.setattr(mdc, "mean_log_spectrum", speaker_vector)
    assert mdc.proxy_eer(str(corpus)) == (0.0, 0.0)


def test_proxy_eer_scores_the_trials_with_the_recipes_spectrogram(corpus):
    eer, within = mdc.proxy_eer(str(corpus))
    # Both figures recomputed from their definition: every test utterance's mean log
    # spectrum (numpy), less their mean, cosine; EER of the trials, and of the same-session
    # pairs against the trials' nontargets, by scikit-learn's ROC.
    test_wav = corpus / "test" / "wav"
    utts = sorted(all_files(test_wav))
    vectors = np.array([numpy_mean_log_spectrum(str(test_wav / u)) for u in utts])
    vectors -= vectors.mean(axis=0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vector = dict(zip(utts, vectors))
    trials = [line.split() for line in (corpus / "veri_test2.txt").read_text().splitlines()]
    scores = [vector[a] @ vector[b] for _, a, b in trials]
    labels = [int(label) for label, _, _ in trials]
    assert eer == pytest.approx(sklearn_eer(scores, labels), abs=1e-9)
    nontarget = [s for s, label in zip(scores, labels) if label == 0]
    same_session = [vector[a] @ vector[b] for n, a in enumerate(utts) for b in utts[n + 1:]
                    if os.path.dirname(a) == os.path.dirname(b)]
    assert within == pytest.approx(sklearn_eer(same_session + nontarget,
                                               [1] * len(same_session) + [0] * len(nontarget)),
                                   abs=1e-9)
