"""A whole run of ./run.sh --corpus voxceleb on tiny trees laid out like the real corpora:
VoxCeleb1 (wav, O/E/H lists), VoxCeleb2 (m4a read through ffmpeg pipes, the training set) and
SITW (flac, a model enrolled from two files), every stage through to the Table 1 output."""
import importlib.util
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from test_recipe_run import LINKED, ROOT, read_table

# whole runs, trainings to the end, kill and resume: the quick tier (-m "not slow") leaves them
pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
EXP = "exp/voxceleb2_tiny"  # exp/<train set>_<config name>
TINY_CONFIG = """\
model: {widths: [4, 8, 8, 8], blocks: [1, 1, 1, 1], embedding_dim: 16}
loss: {type: dam_softmax}
data: {crop_frames: 40, batch_size: 4, num_workers: 0}
optim: {epochs: 1, lr: 0.01, final_lr: 0.005}
training: {log_every_steps: 1}
"""
SITW_TREE = {
    "dev": {
        "lists/enroll-core.lst": ["10001 audio/aahtm.flac", "10001 audio/aaxyz.flac",
                                  "10002 audio/bkwzq.flac"],
        "lists/test-core.lst": ["audio/xolmb.flac", "audio/cefrt.flac"],
        "keys/core-core.lst": ["10001 audio/xolmb.flac tgt", "10001 audio/cefrt.flac imp",
                               "10002 audio/cefrt.flac tgt", "10002 audio/xolmb.flac imp"],
    },
    "eval": {
        "lists/enroll-core.lst": ["20077 audio/qqwer.flac", "20005 audio/ppasd.flac"],
        "lists/test-core.lst": ["audio/mmzxc.flac", "audio/aabbc.flac"],
        "keys/core-core.lst": ["20077 audio/aabbc.flac tgt", "20005 audio/aabbc.flac imp",
                               "20005 audio/mmzxc.flac tgt"],
    },
}


def load_test_module(name):
    spec = importlib.util.spec_from_file_location(name, TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vox1 = load_test_module("test_prepare_voxceleb1")
vox2 = load_test_module("test_prepare_voxceleb2")
sitw = load_test_module("test_prepare_sitw")
ffmpeg = vox2.ffmpeg  # the same fixture: installs ffmpeg with local/install_ffmpeg.sh if missing


@pytest.fixture(scope="module")
def run(tmp_path_factory, ffmpeg):
    work = tmp_path_factory.mktemp("voxceleb_recipe")
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    (work / "tiny.yaml").write_text(TINY_CONFIG)
    corpora = tmp_path_factory.mktemp("corpora")
    vox1.make_tree(corpora / "vox1", "split", {"veri_test2.txt": vox1.VERI_TEST2,
                                               "veri_test.txt": vox1.VERI_TEST2,
                                               "list_test_all2.txt": vox1.LIST_ALL,
                                               "list_test_hard2.txt": vox1.LIST_ALL})
    vox2.make_m4a_tree(corpora / "vox2" / "dev" / "aac")
    sitw.make_tree(corpora / "sitw", SITW_TREE)
    result = subprocess.run(
        ["./run.sh", "--corpus", "voxceleb", "--config", "tiny.yaml",
         "--voxceleb1-root", str(corpora / "vox1"), "--voxceleb2-root", str(corpora / "vox2"),
         "--sitw-root", str(corpora / "sitw"),
         # The baselines need more frames than these few utterances hold; test_recipe_run
         # runs them through run.sh on the demo corpus.
         "--baseline", "false"], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return work, result.stdout


def test_training_set_is_voxceleb2_read_through_ffmpeg(run):
    work, stdout = run
    wav_scp = (work / "data/voxceleb2_dev/wav.scp").read_text().splitlines()
    assert len(wav_scp) == 4 and all(" ffmpeg " in line and line.endswith("|") for line in wav_scp)
    feats = dict(kaldiio.load_scp(str(work / "data/voxceleb2_dev/feats.scp")))
    assert sorted(feats) == vox2.UTTS and all(m.shape[1] == 161 for m in feats.values())
    state_speakers = (work / EXP / "log/train.log").read_text()
    assert "training on 4 utterances of 2 speakers" in state_speakers


def test_vox1_sets_share_one_embedded_union(run):
    work, _ = run
    union = [line.split()[0] for line in
             (work / "data/voxceleb1_eval/utt2spk").read_text().splitlines()]
    needed = set()
    for name in ("vox1_o", "vox1_e", "vox1_h"):
        for trial in (work / f"data/{name}/trials").read_text().splitlines():
            needed |= set(trial.split()[:2])
    assert set(union) == needed
    vectors = dict(kaldiio.load_scp(str(work / EXP / "embeddings_voxceleb1_eval/xvector.scp")))
    assert sorted(vectors) == union


def test_sitw_models_are_scored_with_averaged_enrollment(run):
    """Every SITW score recomputed: a model's embedding is the mean of its enrollment
    utterances' length-normalised embeddings, scored by cosine against the test file's."""
    work, _ = run
    for name in ("sitw_dev", "sitw_eval"):
        scores = [line.split() for line in
                  (work / EXP / f"scores/{name}.scores").read_text().splitlines()]
        trials = [line.split() for line in
                  (work / f"data/{name}_test/trials").read_text().splitlines()]
        assert [s[:2] for s in scores] == [t[:2] for t in trials]
        enroll = dict(kaldiio.load_scp(str(work / EXP / f"embeddings_{name}_enroll/xvector.scp")))
        test = dict(kaldiio.load_scp(str(work / EXP / f"embeddings_{name}_test/xvector.scp")))
        for model, utt, value in scores:
            files = [v / np.linalg.norm(v) for k, v in enroll.items() if k.startswith(f"{model}_")]
            mean = np.mean(files, axis=0)
            expected = mean @ test[utt] / np.linalg.norm(mean) / np.linalg.norm(test[utt])
            assert float(value) == pytest.approx(expected, abs=2e-6), (name, model, utt)
    assert [s[:2] for s in (line.split() for line in (work / EXP / "scores/sitw_dev.scores")
                            .read_text().splitlines())] == [
        ["10001", "xolmb"], ["10001", "cefrt"], ["10002", "cefrt"], ["10002", "xolmb"]]
    assert len([k for k in dict(kaldiio.load_scp(str(
        work / EXP / "embeddings_sitw_dev_enroll/xvector.scp"))) if k.startswith("10001_")]) == 2


def test_vox1_scores_are_the_cosines_and_as_norms_of_the_embeddings(run):
    """Every Vox1 score recomputed from the embeddings (tests/reference_metrics.py): cosine,
    and AS-norm with the training-set mean subtracted and a cohort of each VoxCeleb2 training
    speaker's mean length-normalised embedding (top 300 capped at its 2 speakers)."""
    import reference_metrics as reference

    work, _ = run
    embedding = reference.vectors(work / EXP / "embeddings_voxceleb1_eval/xvector.scp")
    train = reference.vectors(work / EXP / "embeddings_voxceleb2_dev/xvector.scp")
    mean = np.mean(list(train.values()), axis=0)
    unit = lambda v: v / np.linalg.norm(v)
    speaker = {u: spk.strip() for u, spk in
               read_table(work / "data/voxceleb2_dev/utt2spk").items()}
    cohort = [np.mean([unit(v - mean) for u, v in train.items() if speaker[u] == spk], axis=0)
              for spk in sorted(set(speaker.values()))]
    assert len(cohort) == 2
    for name in ("vox1_o", "vox1_o_orig", "vox1_e", "vox1_h"):
        trials = reference.read_trials(work / f"data/{name}/trials")
        plain = reference.read_scores(work / EXP / f"scores/{name}.scores")
        normed = reference.read_scores(work / EXP / f"scores/{name}_asnorm.scores")
        assert [(e, t) for e, t, _ in plain] == [(e, t) for e, t, _ in trials]
        assert [(e, t) for e, t, _ in normed] == [(e, t) for e, t, _ in trials]
        for (e, t, value), (_, _, value_norm) in zip(plain, normed):
            assert value == pytest.approx(reference.cosine(embedding[e], embedding[t]),
                                          abs=2e-6)
            assert value_norm == pytest.approx(reference.asnorm(
                embedding[e] - mean, embedding[t] - mean, cohort, 2), abs=1e-4)


def trials_of(work, name):
    """A set's trials: data/<set>/trials, SITW's beside its test files."""
    return work / "data" / (f"{name}_test" if name.startswith("sitw") else name) / "trials"


def test_table_has_every_evaluation_set_next_to_the_paper(run):
    work, stdout = run
    table = (work / EXP / "results.md").read_text()
    assert table in stdout
    rows = {line.split("|")[2].strip(): line for line in table.splitlines()[2:]}
    sets = ["sitw_dev", "sitw_eval", "vox1_e", "vox1_h", "vox1_o", "vox1_o_orig"]
    # cosine, AS-norm and PLDA rows of every set; calibrated rows (_cal) beside them where the
    # tiny training set gave calibration trials
    backends = [name + suffix for name in sets for suffix in ("", "_asnorm", "_plda")]
    assert sorted(name for name in rows if not name.endswith("_cal")) == sorted(backends)
    assert all(name[:-len("_cal")] in backends for name in rows if name.endswith("_cal"))
    # trained on VoxCeleb2 with DAM-Softmax: the paper's Table 1 column, beside the original
    # list the paper used; each row names its list and trial count
    assert rows["vox1_o_orig"].rstrip(" |").endswith("1.94")
    assert "| vox1_o_orig | veri_test.txt | 3 |" in rows["vox1_o_orig"]
    assert rows["vox1_o"].rstrip(" |").endswith("-")
    assert "| vox1_o | veri_test2.txt | 3 |" in rows["vox1_o"]
    assert "| vox1_e | list_test_all2.txt | 2 |" in rows["vox1_e"]
    assert "trained-on-test" not in table   # VoxCeleb2 speakers are not VoxCeleb1's
    assert rows["sitw_eval"].rstrip(" |").endswith("3.64")
    assert rows["sitw_dev"].rstrip(" |").endswith("-")
    # every row's EER and minDCF are those of its scores (tests/reference_metrics.py)
    import reference_metrics as reference
    for name in backends:
        row = rows[name]
        set_name = name.replace("_asnorm", "").replace("_plda", "")
        eer = reference.check_results_file(work / EXP / f"scores/{name}.results",
                                           work / EXP / f"scores/{name}.scores",
                                           trials_of(work, set_name))
        assert float(row.split("|")[5].split()[0]) == pytest.approx(eer, abs=0.005)


def test_trained_on_vox1_dev_the_sets_that_share_its_speakers_are_flagged_at_stage_1(
        tmp_path):
    # Vox1-E draws on dev speakers: trained on VoxCeleb1 dev, its results are trained-on-test.
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "tiny.yaml").write_text(TINY_CONFIG)
    vox1.make_tree(tmp_path / "vox1", "split", {"veri_test2.txt": vox1.VERI_TEST2,
                                                 "list_test_all2.txt": vox1.LIST_ALL})
    result = subprocess.run(
        ["./run.sh", "--corpus", "voxceleb", "--train-set", "voxceleb1", "--config", "tiny.yaml",
         "--voxceleb1-root", str(tmp_path / "vox1"), "--stop-stage", "1"],
        cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ("./run.sh: warning: 2 of the 3 speakers of vox1_e are in the training set "
            "data/voxceleb1_dev: its results measure trained-on-test speakers, and results.md "
            "marks them so") in result.stderr
    assert "of vox1_o are in" not in result.stderr
    assert (tmp_path / "data/vox1_e/trials.info").read_text() == (
        "list list_test_all2.txt\nspeakers_in_training 2\n")
    assert (tmp_path / "data/vox1_o/trials.info").read_text() == (
        "list veri_test2.txt\nspeakers_in_training 0\n")
