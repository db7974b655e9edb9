"""Every bad input gets a clear answer, through the entry point a user runs: the message names
the file and the utterance (or key, or step) and says what to do, there is no traceback, and
nothing made before the problem was met is lost."""
import errno
import runpy
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile
import torch
import yaml

from pytorch_modules.data.batch_plan import EpochBatches

import tiny_data

GOOD_SPEAKERS, GOOD_PER_SPEAKER = 2, 5


def run_in_process(module, args, monkeypatch, capsys):
    """`python -m module args` in this process (the same code path, without the ~2 s start of
    torch): returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [module, *map(str, args)])
    threads = torch.get_num_threads()   # entry points set their own; keep this process's
    try:
        with pytest.raises(SystemExit) as exited:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr()
    return exited.value.code, out.out, out.err


def assert_clean_error(stderr, prog, *phrases):
    assert stderr.startswith(f"{prog}: ") and "Traceback" not in stderr, stderr
    for phrase in phrases:
        assert phrase in stderr, f"'{phrase}' not in:\n{stderr}"


# ---- audio, through steps/make_spectrogram.sh ---------------------------------------------------

def bad_audio(audio):
    """utt -> (wav.scp source, words its message must hold), one per kind of bad audio."""
    audio.mkdir(parents=True, exist_ok=True)
    path = {name: audio / f"{name}.wav" for name in
            ("empty", "nan", "quiet", "rate8k", "silent", "stereo", "text", "truncated")}
    path["empty"].write_bytes(b"")
    soundfile.write(path["nan"], np.full(4000, np.nan, np.float32), tiny_data.RATE,
                    subtype="FLOAT")
    soundfile.write(path["quiet"], tiny_data.tone(level=1e-5), tiny_data.RATE, subtype="FLOAT")
    tiny_data.write_wav(path["rate8k"], tiny_data.tone(rate=8000), rate=8000)
    tiny_data.write_wav(path["silent"], np.zeros(8000, np.float32))
    tiny_data.write_wav(path["stereo"], tiny_data.tone(channels=2))
    path["text"].write_text("this is not audio\n")
    whole = tiny_data.write_wav(audio / "whole.wav", tiny_data.tone()).read_bytes()
    path["truncated"].write_bytes(whole[:len(whole) // 2])   # cut in the middle of the data
    missing = audio / "missing.wav"
    return {
        "spk9-empty": (path["empty"], "is empty (0 bytes)"),
        "spk9-missing": (missing, f"audio file '{missing}' does not exist"),
        "spk9-nan": (path["nan"], "holds NaN or infinite samples"),
        "spk9-quiet": (path["quiet"], "is silent (RMS level -10"),
        "spk9-rate8k": (path["rate8k"], "has sample rate 8000 Hz, but the feature config "
                                        "expects 16000 Hz; resample the corpus, or put "
                                        "--allow-resample=true"),
        "spk9-silent": (path["silent"], "is silent (RMS level -inf dBFS, below "
                                        "--min-rms-dbfs=-80"),
        "spk9-stereo": (path["stereo"], "has 2 channels; the recipe needs mono audio "
                                        "(select one channel in wav.scp, e.g. with sox ... "
                                        "remix 1 |)"),
        "spk9-text": (path["text"], "cannot read audio file"),
        "spk9-truncated": (path["truncated"], "is truncated: its header announces"),
    }


@pytest.mark.slow
def test_bad_audio_is_named_skipped_and_judged_over_the_whole_data_dir(tmp_path):
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    good = tiny_data.good_audio_dir(recipe / "data/x", tmp_path / "audio", GOOD_SPEAKERS,
                                    GOOD_PER_SPEAKER)
    bad = bad_audio(tmp_path / "audio")
    tiny_data.write_audio_dir(recipe / "data/x", {**good, **{u: s for u, (s, _) in bad.items()}})
    stage = ["steps/make_spectrogram.sh", "--nj", "2"]

    # 9 of 19 lost: far more than the default 5%, so the stage fails ...
    result = tiny_data.run_script(recipe, *stage, "data/x", "feats")
    assert result.returncode == 1
    for utt, (source, words) in bad.items():
        assert f"skipping: utterance {utt}: " in result.stderr and words in result.stderr, \
            f"{utt}: '{words}' not in\n{result.stderr}"
    assert ("9 of 19 utterances of data/x could not be used, more than --max-fail-fraction "
            "0.05") in result.stderr
    # ... leaving no feats.scp to be taken for finished, and the good features it made
    assert not (recipe / "data/x/feats.scp").exists()
    job1 = dict(kaldiio.load_scp(str(recipe / "feats/raw_spec_x.1.scp")))
    assert len(job1) == 9 and set(job1) < set(good)   # the first half: all good, all kept
    assert all(f.shape[1] == 161 for f in job1.values())
    assert not (recipe / "feats/raw_spec_x.2.scp").exists()  # lost some: redone next time
    log1 = (recipe / "data/x/log/make_spectrogram_x.1.log").read_text()

    # ... and with a looser threshold it keeps exactly the good utterances
    result = tiny_data.run_script(recipe, *stage, "--max-fail-fraction", "0.5", "data/x", "feats")
    assert result.returncode == 0, result.stderr
    assert (recipe / "data/x/log/make_spectrogram_x.1.log").read_text() == log1  # not redone
    assert "9 of 19 utterances of data/x could not be used (see above); dropping them" \
        in result.stderr
    feats = dict(kaldiio.load_scp(str(recipe / "data/x/feats.scp")))
    assert sorted(feats) == sorted(good)
    assert sorted(tiny_data.read_table(recipe / "data/x/utt2spk")) == sorted(good)
    assert "spk9" not in (recipe / "data/x/spk2utt").read_text()

    # a trial list that uses a dropped utterance is reported now, before any training
    tiny_data.write_lines(recipe / "trials", [f"{good_utt} spk9-stereo nontarget"
                                              for good_utt in sorted(good)[:3]]
                          + [f"{sorted(good)[0]} {sorted(good)[1]} target", ""])
    result = tiny_data.run_script(recipe, "utils/unscorable_trials.sh", "trials",
                                  "data/x/feats.scp", "data/x/feats.scp")
    assert result.returncode == 0
    assert result.stderr == ("unscorable_trials.sh: warning: 3 of 4 trials of trials use 1 id "
                             "without features ('spk9-stereo'); scoring will refuse them.  Fix "
                             "the audio and rerun the feature stage, which tries dropped "
                             "utterances again.\n")

    # the audio of two is fixed: rerunning the stage (not data preparation) brings them back
    for utt in ("spk9-stereo", "spk9-missing"):
        tiny_data.write_wav(bad[utt][0], tiny_data.tone(seed=len(utt)))
    result = tiny_data.run_script(recipe, *stage, "--max-fail-fraction", "0.5", "data/x", "feats")
    assert result.returncode == 0, result.stderr
    assert "trying again the 9 utterance(s) of data/x that an earlier run dropped" in result.stderr
    back = sorted(good) + ["spk9-missing", "spk9-stereo"]
    assert sorted(kaldiio.load_scp(str(recipe / "data/x/feats.scp"))) == back
    assert sorted(tiny_data.read_table(recipe / "data/x/utt2spk")) == back
    assert "spk9 spk9-missing spk9-stereo" in (recipe / "data/x/spk2utt").read_text()
    assert len(tiny_data.read_table(recipe / "data/x/.dropped/wav.scp")) == 7   # still bad
    result = tiny_data.run_script(recipe, "utils/unscorable_trials.sh", "trials",
                                  "data/x/feats.scp", "data/x/feats.scp")
    assert result.returncode == 0 and result.stderr == ""


def test_other_sample_rates_are_resampled_when_the_config_allows(tmp_path, monkeypatch, capsys):
    wav = tiny_data.write_wav(tmp_path / "a.wav", tiny_data.tone(seconds=0.5, rate=8000), 8000)
    tiny_data.write_lines(tmp_path / "wav.scp", [f"spk1-a {wav}"])
    config = tmp_path / "spectrogram.conf"
    config.write_text(open("conf/spectrogram.conf").read() + "--allow-resample=true\n")
    code, _, err = run_in_process("pytorch_modules.bin.compute_spectrogram",
                                  ["--config", config, tmp_path / "wav.scp", tmp_path / "out"],
                                  monkeypatch, capsys)
    assert code == 0, err
    feats = kaldiio.load_scp(str(tmp_path / "out.scp"))["spk1-a"]
    assert feats.shape == (1 + (8000 - 320) // 160, 161)   # 0.5 s at 16 kHz
    assert np.isfinite(feats).all()


# ---- data dirs, through steps/make_spectrogram.sh (which validates first) -----------------------

def drop_line(path, number):
    lines = path.read_text().splitlines()
    tiny_data.write_lines(path, lines[:number] + lines[number + 1:])


def duplicate_line(path, number):
    lines = path.read_text().splitlines()
    tiny_data.write_lines(path, lines[:number + 1] + lines[number:])


def swap_lines(path, number):
    lines = path.read_text().splitlines()
    lines[number], lines[number + 1] = lines[number + 1], lines[number]
    tiny_data.write_lines(path, lines)


@pytest.mark.parametrize("damage, file, words", [
    (duplicate_line, "wav.scp", ["data/x/wav.scp line 3: duplicate id 'spk1-001' (also on line 2)",
                                 "sort the files and drop duplicates with: "
                                 "utils/fix_data_dir.sh data/x"]),
    (swap_lines, "utt2spk", ["data/x/utt2spk line 3: 'spk1-001' comes after 'spk1-002' but must "
                             "come before it (C order)"]),
    (drop_line, "wav.scp", ["1 utterance of data/x/utt2spk missing from data/x/wav.scp (first: "
                            "'spk1-001'); keep only the utterances in every file with: "
                            "utils/fix_data_dir.sh data/x"]),
])
def test_a_broken_data_dir_stops_the_feature_stage_before_any_job(tmp_path, damage, file, words):
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    tiny_data.good_audio_dir(recipe / "data/x", tmp_path / "audio", 1, 4)
    damage(recipe / "data/x" / file, 1)
    result = tiny_data.run_script(recipe, "steps/make_spectrogram.sh", "data/x", "feats")
    assert result.returncode == 1
    for phrase in words:
        assert f"validate_data_dir.sh: {phrase}" in result.stderr, result.stderr
    assert not (recipe / "data/x/log").exists() and not (recipe / "data/x/feats.scp").exists()


# ---- training, through python -m pytorch_modules.bin.train --------------------------------------
# (An utterance shorter than the training crop is repeat-padded: tests/test_resume.py trains
# with one and checks the log says so.)

def train_in_process(config, work, monkeypatch, capsys):
    """Training of work/data into work/exp, in this process (see run_in_process)."""
    rng_state = torch.get_rng_state()   # training seeds the global generator
    try:
        return run_in_process("pytorch_modules.bin.train",
                              ["--config", config, work / "data", work / "exp"],
                              monkeypatch, capsys)
    finally:
        torch.set_rng_state(rng_state)


def truncate(path, nbytes):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - nbytes)


@pytest.mark.parametrize("num_workers", [
    0,
    1,  # a DataLoader worker raises it: the entry point unwraps the sentence
])
def test_a_truncated_feature_ark_stops_training_naming_utterance_and_ark(
        tmp_path, monkeypatch, capsys, num_workers):
    tiny_data.write_feature_dir(tmp_path / "data", 2, 4)
    truncate(tmp_path / "data/feats.ark", 2000)   # cuts into the last utterance, spk2-003
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1,
                                          num_workers=num_workers)
    code, _, err = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "train",
                       f"cannot read the features of utterance spk2-003 from "
                       f"{tmp_path}/data/feats.ark:", "rerun feature extraction")


def test_features_of_another_height_than_the_model_stop_training_before_a_step(
        tmp_path, monkeypatch, capsys):
    tiny_data.write_feature_dir(tmp_path / "data", 2, 4, bins=80)   # e.g. conf/fbank.conf's
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1)
    code, _, err = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "train",
                       f"{tmp_path}/data: its features are 80 bins high, but the training "
                       f"config's model.input_bins is 161; set model.input_bins to 80")
    assert not (tmp_path / "exp/checkpoints").exists()


@pytest.mark.parametrize("keys, words", [
    ("model: {input_bins: 80}", "model.input_bins is 80, but conf/spectrogram.conf "
                                "(data.spectrogram_config) makes 161-bin features; set "
                                "model.input_bins: 161"),
    ("data: {spectrogram_config: conf/nothing.conf}",
     "data.spectrogram_config names conf/nothing.conf, which does not exist"),
])
def test_config_value_checks_the_feature_options_against_the_model(
        monkeypatch, capsys, tmp_path, keys, words):
    config = tmp_path / "bad.yaml"
    config.write_text(keys + "\n")
    code, _, err = run_in_process("pytorch_modules.bin.config_value", [config, "loss.type"],
                                  monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "config_value", f"{config}: {words}")


def test_a_non_finite_loss_stops_training_at_its_step_keeping_the_checkpoints(
        tmp_path, monkeypatch, capsys):
    feats = tiny_data.write_feature_dir(tmp_path / "data", 4, 4)   # 16 utts: 4 steps of 4
    # NaN features for an utterance first met at step 3 (seed 5 as in the config): steps 1-2
    # run, the checkpoint of step 2 is written, step 3 has a NaN loss.
    utts = sorted(feats)
    frames = np.array([feats[u].shape[0] for u in utts])
    index = EpochBatches(frames, 4, 40, seed=5).batch(epoch=1, step=2)[0][0]
    nan = np.full_like(feats[utts[index]], np.nan)
    tiny_data.write_feature_dir(tmp_path / "data", 4, 4, special={utts[index]: nan})
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1)

    code, _, err = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 1
    checkpoint = tmp_path / "exp/checkpoints/epoch_001_step_000002.pt"
    assert_clean_error(err, "train", "the loss became nan at epoch 1 step 3",
                       f"last good checkpoint ({checkpoint})")
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == [checkpoint.name]
    state = torch.load(checkpoint, weights_only=True)
    assert state["step"] == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert not (tmp_path / "exp/final.pt").exists()


# ---- training: an exp dir made from other data -------------------------------------------

def add_utterance(data, utt, frames=60):
    """One more utterance in a feature data dir (its own ark), the speaker files kept in
    order: what rerunning stages 1-2 after adding a recording leaves."""
    mat = np.random.default_rng(9).standard_normal((frames, 161)).astype(np.float32)
    kaldiio.save_ark(str(data / "extra.ark"), {utt: mat}, scp=str(data / "extra.scp"))
    for name, line in (("feats.scp", (data / "extra.scp").read_text().strip()),
                       ("utt2num_frames", f"{utt} {frames}"), ("utt2spk", f"{utt} {utt[:4]}")):
        lines = (data / name).read_text().splitlines() + [line]
        tiny_data.write_lines(data / name, sorted(lines))
    tiny_data.write_speaker_files(data, [ln.split()[0] for ln in
                                         (data / "utt2spk").read_text().splitlines()])


@pytest.mark.parametrize("change", ["utterance added", "features recomputed"])
@pytest.mark.slow
def test_a_finished_exp_dir_of_other_data_is_refused_not_kept(tmp_path, monkeypatch, capsys,
                                                               change):
    """The speakers are the same, so only a fingerprint of what training reads tells the old
    model from the data: rerunning must not say 'resuming' and keep the old final.pt."""
    tiny_data.write_feature_dir(tmp_path / "data", 2, 4)
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1)
    assert train_in_process(config, tmp_path, monkeypatch, capsys)[0] == 0
    model = (tmp_path / "exp/final.pt").read_bytes()
    if change == "utterance added":
        add_utterance(tmp_path / "data", "spk1-100")
    else:   # the same ids, lengths and ark offsets; other values (other feature options)
        feats = dict(kaldiio.load_scp(str(tmp_path / "data/feats.scp")))
        scp_before = (tmp_path / "data/feats.scp").read_text()
        tiny_data.write_feature_dir(tmp_path / "data", 2, 4,
                                    special={u: 2 * m for u, m in feats.items()})
        assert (tmp_path / "data/feats.scp").read_text() == scp_before
    code, out, err = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 1 and "resuming" not in out
    assert_clean_error(err, "train", f"{tmp_path}/exp/checkpoints/epoch_001.pt was trained on "
                                     f"other data than this training set holds now",
                       "Use a new exp dir, or delete")
    assert (tmp_path / "exp/final.pt").read_bytes() == model


@pytest.mark.slow
def test_the_same_data_resumes_and_old_checkpoints_are_judged_by_their_speakers(
        tmp_path, monkeypatch, capsys):
    tiny_data.write_feature_dir(tmp_path / "data", 2, 4)
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1)
    assert train_in_process(config, tmp_path, monkeypatch, capsys)[0] == 0
    code, out, _ = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 0 and "resuming from" in out
    # a checkpoint of an earlier version of the recipe, which recorded only the speakers
    checkpoint = tmp_path / "exp/checkpoints/epoch_001.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["data_fingerprint"]
    torch.save(state, checkpoint)
    add_utterance(tmp_path / "data", "spk1-100")   # same speakers: resumes, as it did
    assert train_in_process(config, tmp_path, monkeypatch, capsys)[0] == 0
    state["speakers"] = ["spk1", "spk9"]
    torch.save(state, checkpoint)
    code, _, err = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 1 and "was trained on other data" in err


def test_an_exp_dir_of_another_config_is_refused_but_not_for_keys_added_since(
        tmp_path, monkeypatch, capsys):
    """README: 'config.yaml differs from the config given now'.  A key the recipe added later
    (absent from an older config.yaml, read with its default) is not a difference."""
    tiny_data.write_feature_dir(tmp_path / "data", 2, 4)
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1)
    assert train_in_process(config, tmp_path, monkeypatch, capsys)[0] == 0
    recorded = tmp_path / "exp/config.yaml"
    older = yaml.safe_load(recorded.read_text())
    del older["optim"]["average_last"]
    recorded.write_text(yaml.safe_dump(older))
    code, out, err = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 0 and "resuming from" in out, err
    assert "average_last" in recorded.read_text()
    changed = tmp_path / "changed.yaml"
    changed.write_text(config.read_text().replace("lr: 0.01", "lr: 0.02"))
    code, _, err = train_in_process(changed, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "train", f"{recorded} differs from the config given now: this exp "
                                     f"dir was trained with another config")


def test_a_batch_larger_than_the_training_set_is_refused(tmp_path, monkeypatch, capsys):
    """It used to repeat utterances within each batch without a word."""
    tiny_data.write_feature_dir(tmp_path / "data", 1, 3)
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1)
    code, _, err = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "train", "data.batch_size 4 is larger than the training set's 3 "
                                     "utterances", "set data.batch_size to at most 3")
    assert not (tmp_path / "exp/checkpoints").exists()


def test_more_loader_workers_than_cores_are_cut_to_the_cores_once(tmp_path, monkeypatch, capsys):
    tiny_data.write_feature_dir(tmp_path / "data", 2, 4)
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=2, num_workers=64)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    code, out, err = train_in_process(config, tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert out.count("data.num_workers 64 is more than the 2 cores this process may use: "
                     "2 loader workers") == 1
    assert "suggested max number of worker" not in err


@pytest.mark.parametrize("section, words", [
    ("training: {seed: 5, chekpoint_every_steps: 2}",
     "training: unknown key 'chekpoint_every_steps' (known keys: "),
    ("data: {crop_frames: forty}", "data.crop_frames must be an integer, got 'forty'"),
    # values out of range: refused before any work, never a run that trains at chance
    ("loss: {type: dam_softmax, scale: 0}",
     "loss.scale is 0, but dam_softmax needs it > 0"),
    ("loss: {type: dam_softmax, lambda: -1}",
     "loss.lambda is -1, but dam_softmax needs it > 0"),
    ("loss: {type: am_softmax, margin: 1.5}",
     "loss.margin is 1.5, but am_softmax needs it in [0, 1) (a cosine margin)"),
    ("loss: {type: a_softmax, margin: 0}",
     "loss.margin is 0, but a_softmax needs it >= 1 (an integer multiple of the angle)"),
    ("training: {log_every_steps: 0}", "training.log_every_steps is 0, but it must be > 0"),
    ("training: {threads: -2}", "training.threads is -2, but it must be >= 0 (0: all cores)"),
    ("optim: {momentum: 1.0}", "optim.momentum is 1.0, but it must be in [0, 1)"),
    ("optim: {lr: .nan}", "optim.lr is nan, but it must be > 0"),
    ("optim: {lr: 0.01, final_lr: 0.1}",
     "optim.final_lr is 0.1, but it must be <= optim.lr (0.01)"),
])
def test_a_bad_config_names_the_file_and_key(tmp_path, monkeypatch, capsys, section, words):
    config = tmp_path / "bad.yaml"
    config.write_text(f"model: {{widths: [4, 8, 8, 8], blocks: [1, 1, 1, 1]}}\n{section}\n")
    code, _, err = run_in_process("pytorch_modules.bin.train",
                                  ["--config", config, tmp_path / "data", tmp_path / "exp"],
                                  monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "train", f"{config}: {words}")


# ---- embeddings and scoring -------------------------------------------------------------------

def test_a_truncated_feature_ark_stops_embedding_naming_utterance_and_ark(
        tmp_path, monkeypatch, capsys):
    tiny_data.write_feature_dir(tmp_path / "data", 2, 2)
    truncate(tmp_path / "data/feats.ark", 2000)
    model = tiny_data.write_tiny_model(tmp_path / "final.pt")
    code, _, err = run_in_process(
        "pytorch_modules.bin.extract_embeddings",
        [model, tmp_path / "data/feats.scp", tmp_path / "xvector.1"], monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "extract_embeddings", "cannot read the features of utterance "
                       f"spk2-001 from {tmp_path}/data/feats.ark:",
                       f"delete {tmp_path}/data/feats.scp and rerun the feature stage")
    assert not (tmp_path / "xvector.1.scp").exists()   # the job is not done


def test_non_finite_features_stop_embedding_naming_the_utterance(tmp_path, monkeypatch, capsys):
    nan = np.full((50, 161), np.nan, np.float32)
    tiny_data.write_feature_dir(tmp_path / "data", 2, 2, special={"spk1-001": nan})
    model = tiny_data.write_tiny_model(tmp_path / "final.pt")
    code, _, err = run_in_process(
        "pytorch_modules.bin.extract_embeddings",
        [model, tmp_path / "data/feats.scp", tmp_path / "xvector.1"], monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "extract_embeddings", "the features of utterance spk1-001 in "
                       f"{tmp_path}/data/feats.ark:", "hold NaN or infinite values")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_embedding_on_cuda_without_a_gpu_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    tiny_data.write_feature_dir(tmp_path / "data", 2, 2)
    model = tiny_data.write_tiny_model(tmp_path / "final.pt")
    code, _, err = run_in_process(
        "pytorch_modules.bin.extract_embeddings",
        ["--device", "cuda", model, tmp_path / "data/feats.scp", tmp_path / "xvector.1"],
        monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "extract_embeddings", "--device cuda, but this job sees no CUDA GPU",
                       "--use-gpu true")
    assert not (tmp_path / "xvector.1.ark").exists()


def write_embeddings(directory, utts):
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{directory}/xvector.ark,{directory}/xvector.scp") as w:
        for utt in utts:
            w(utt, rng.standard_normal(16).astype(np.float32))


def score(tmp_path, trials, *options):
    scp = tmp_path / "xvector.scp"
    return tiny_data.run_python("-m", "pytorch_modules.bin.score", "--trials", trials,
                                "--enroll-scp", scp, "--test-scp", scp,
                                "--scores-out", tmp_path / "x.scores",
                                "--results-out", tmp_path / "x.results", *options)


@pytest.mark.parametrize("asnorm", [False, True], ids=["cosine", "asnorm"])
def test_scoring_names_trial_utterances_without_an_embedding(tmp_path, asnorm):
    """The first line with an id without an embedding, its side, then the counts; the advice
    fits a list of other utterances as well as a set that changed after extraction."""
    write_embeddings(tmp_path, ["a", "b", "c"])
    options = []
    if asnorm:
        write_embeddings(tmp_path / "cohort", ["s1", "s2", "s3", "s4"])
        options = ["--cohort-scp", tmp_path / "cohort/xvector.scp", "--top-n", "2"]
    tiny_data.write_lines(tmp_path / "trials", ["a b target", "", "a c nontarget",
                                                "a ghost nontarget", "ghost2 ghost nontarget"])
    (tmp_path / "x.scores").write_text("earlier scores\n")
    result = score(tmp_path, tmp_path / "trials", *options)
    assert result.returncode == 1
    trials = f"{tmp_path}/trials"
    assert_clean_error(result.stderr, "score",
                       f"score: {trials}:4: test id 'ghost' has no embedding; 1 enrollment "
                       f"id(s) (ghost2) and 1 test id(s) (ghost) of {trials} have no embedding.",
                       "Check that the trial list names utterances of this set (the "
                       "embeddings' xvector.scp lists every embedded utterance) or, if the set "
                       "changed, rerun embedding extraction (stage 4).")
    assert (tmp_path / "x.scores").read_text() == "earlier scores\n"   # not overwritten


def test_scoring_names_the_embedding_of_a_truncated_ark(tmp_path):
    write_embeddings(tmp_path, ["a", "b", "c"])
    truncate(tmp_path / "xvector.ark", 10)   # cuts into c's vector
    tiny_data.write_lines(tmp_path / "trials", ["a b target", "a c nontarget"])
    result = score(tmp_path, tmp_path / "trials")
    assert result.returncode == 1
    assert_clean_error(result.stderr, "score",
                       f"{tmp_path}/xvector.scp:3: cannot read the embedding of c",
                       "rerun embedding extraction")


# ---- a full disk --------------------------------------------------------------------------------

DISK_FULL = "no space left on device writing {ark}; free space and rerun the stage: finished " \
            "jobs are kept"


def test_a_full_disk_fails_the_feature_job_with_a_sentence(tmp_path, monkeypatch, capsys):
    """The writer raises ENOSPC at the second utterance, as a full disk would."""
    sources = tiny_data.good_audio_dir(tmp_path / "data", tmp_path / "audio", 1, 3)
    from pytorch_modules.fileio import kaldi_compress
    real_writer = kaldi_compress.ArkWriter

    class FillingWriter(real_writer):
        def __call__(self, key, value):
            if key != min(sources):
                raise OSError(errno.ENOSPC, "No space left on device")
            super().__call__(key, value)

    # The entry point imports ArkWriter when it runs: patch it where it comes from.
    monkeypatch.setattr(kaldi_compress, "ArkWriter", FillingWriter)
    out = tmp_path / "feats/raw_spec_x.1"
    out.parent.mkdir()
    code, _, err = run_in_process(
        "pytorch_modules.bin.compute_spectrogram",
        ["--config", "conf/spectrogram.conf", tmp_path / "data/wav.scp", out],
        monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "compute_spectrogram", DISK_FULL.format(ark=f"{out}.ark"))
    assert list(out.parent.iterdir()) == []   # the partial ark is removed: it only took space


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KiB tmpfs, unmounted afterwards.  Mounting needs root (this project's test
    machines run the suite as root); where it fails the test fails and says so, never a silent
    pass.  RECIPE_SKIP_TMPFS=1 skips the tests that need it, each counted as skipped in
    pytest's summary."""
    import os

    if os.environ.get("RECIPE_SKIP_TMPFS") == "1":
        pytest.skip("RECIPE_SKIP_TMPFS=1: the disk-full tests need a tmpfs mount")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a 300 KiB tmpfs at {disk} ({mounted.stderr.decode().strip()}"
                    f"); the disk-full tests need one: run them as root, or set "
                    f"RECIPE_SKIP_TMPFS=1 to skip them", pytrace=False)
    try:
        size = os.statvfs(disk)
        assert size.f_blocks * size.f_frsize <= 512 * 1024, "the tmpfs is not the small disk"
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.slow
def test_a_full_disk_fails_the_stage_and_a_rerun_finishes_it(tmp_path, small_disk):
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    sources = {}
    for n, utt in enumerate(tiny_data.utt_ids(2, 3)):   # 1 s each: 64 KiB of features
        sources[utt] = str(tiny_data.write_wav(tmp_path / f"audio/{utt}.wav",
                                               tiny_data.tone(1.0, seed=n)))
    tiny_data.write_audio_dir(recipe / "data/x", sources)
    # one job at a time: job 1 (192 KiB) fits on the disk, job 2 does not
    stage = ["steps/make_spectrogram.sh", "--nj", "2", "--cmd",
             "utils/launch_local.py --max-jobs-run 1", "data/x", small_disk]
    result = tiny_data.run_script(recipe, *stage)
    assert result.returncode == 1
    ark2 = small_disk / "raw_spec_x.2.ark"
    assert "launch_local.py: 1 / 2 failed, log is in data/x/log/make_spectrogram_x.2.log" \
        in result.stderr
    assert DISK_FULL.format(ark=ark2) in result.stderr
    assert not (recipe / "data/x/feats.scp").exists() and not ark2.exists()
    assert (small_disk / "raw_spec_x.1.scp").exists()   # the finished job is kept
    log1 = (recipe / "data/x/log/make_spectrogram_x.1.log").read_text()

    subprocess.run(["mount", "-o", "remount,size=2m", str(small_disk)], check=True)
    result = tiny_data.run_script(recipe, *stage)
    assert result.returncode == 0, result.stderr
    assert (recipe / "data/x/log/make_spectrogram_x.1.log").read_text() == log1
    assert sorted(kaldiio.load_scp(str(recipe / "data/x/feats.scp"))) == sorted(sources)


def test_a_full_disk_while_writing_a_checkpoint_is_a_sentence_and_leaves_nothing(small_disk):
    from pytorch_modules.errors import RecipeError
    from pytorch_modules.fileio import checkpoint_file
    checkpoint_file.save_atomic({"w": torch.zeros(10)}, small_disk / "epoch_001.pt")
    target = small_disk / "epoch_002.pt"
    with pytest.raises(RecipeError) as error:   # 1 MB on a 300 KiB disk
        checkpoint_file.save_atomic({"w": torch.zeros(256 * 1024)}, target)
    assert str(error.value) == (f"the disk is full: {target} could not be written; the "
                                f"previous checkpoints are intact: free some space and rerun "
                                f"to resume")
    assert sorted(p.name for p in small_disk.iterdir()) == ["epoch_001.pt"]


def test_a_full_disk_while_writing_scores_is_a_sentence_and_leaves_nothing(small_disk):
    from pytorch_modules.errors import RecipeError
    from pytorch_modules.fileio.atomic import write_lines
    target = small_disk / "vox1_o.scores"
    with pytest.raises(RecipeError, match=rf"^the disk is full: {target} could not be "
                                          rf"written; free some space and rerun this stage$"):
        write_lines(target, (f"enroll{n} test{n} 0.123456" for n in range(40_000)))
    assert list(small_disk.iterdir()) == []


# ---- permissions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_written_outputs_have_the_mode_of_the_users_umask(tmp_path, umask, mode):
    """Scores, results, figures, histograms and checkpoints are written through temporary files,
    which mkstemp makes 0600; they must end as readable as any other output."""
    import os

    from matplotlib.figure import Figure

    from pytorch_modules.fileio import checkpoint_file
    from pytorch_modules.fileio.atomic import write_lines
    from pytorch_modules.reports import cos_histogram, plots
    old = os.umask(umask)
    try:
        write_lines(tmp_path / "s.scores", ["a b 0.5"])
        plots.save_figure(Figure(), tmp_path / "det.png")
        cos_histogram.write_epoch(tmp_path / "hist.tsv", 1, np.array([0.0, 0.5, 1.0]),
                                  np.array([1, 2]))
        checkpoint_file.save_atomic({"w": torch.zeros(2)}, tmp_path / "epoch_001.pt")
    finally:
        os.umask(old)
    for name in ("s.scores", "det.png", "hist.tsv", "epoch_001.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
