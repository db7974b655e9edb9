"""On-the-fly features (config data.features: on_the_fly): training crops computed from the
audio equal the stage-2 ark features of the same frames, read only the crop's samples, and
bad input is refused with a sentence (pytorch_modules/data/audio_crops.py, data.py)."""
import numpy as np
import pytest
import soundfile
import torch

from pytorch_modules.data.training_set import read_training_set
from pytorch_modules.errors import RecipeError

import tiny_data

SPECTROGRAM = tiny_data.ROOT / "conf/spectrogram.conf"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A data dir of 16-bit and float wav and flac files, 0.3-2.5 s, with stage-2 features."""
    def write_audio(n, utt, folder):
        path = folder / f"{utt}.{'flac' if n % 3 == 2 else 'wav'}"
        soundfile.write(path, tiny_data.tone(0.3 + 0.4 * n, seed=n), tiny_data.RATE,
                        subtype="FLOAT" if n % 3 == 1 else "PCM_16")
        return str(path)

    recipe, _ = tiny_data.recipe_with_audio(tmp_path_factory.mktemp("on_the_fly"), 2, 3,
                                            write_audio)
    return recipe


def test_a_crop_computed_from_the_audio_equals_the_ark_features_of_its_frames(recipe):
    arks = read_training_set(str(recipe / "data/x"))
    audio = read_training_set(str(recipe / "data/x"), "on_the_fly", str(SPECTROGRAM))
    assert audio.utts == arks.utts and (audio.num_frames == arks.num_frames).all()
    assert audio.source.paths[0].endswith(".wav") and audio.source.options.fft_length == 320
    for index in range(len(arks)):
        frames = int(arks.num_frames[index])
        length = 40
        # the first, a middle and the last possible crop; shorter utterances are repeat-padded
        for start in sorted({0, max(frames - length, 0) // 2, max(frames - length, 0)}):
            expected = arks.crop(index, start, length)
            got = audio.crop(index, start, length)
            assert got.shape == expected.shape == (length, 161)
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4,
                                       err_msg=f"{arks.utts[index]} from frame {start}")


def test_only_the_crops_samples_are_read(recipe, monkeypatch):
    audio = read_training_set(str(recipe / "data/x"), "on_the_fly", str(SPECTROGRAM))
    index = int(np.argmax(audio.num_frames))   # 2.3 s: 228 frames
    reads = []
    real_read = soundfile.SoundFile.read
    real_seek = soundfile.SoundFile.seek

    def seek(self, frames, *args):
        reads.append(("seek", frames))
        return real_seek(self, frames, *args)

    def read(self, frames=-1, *args, **kwargs):
        reads.append(("read", frames))
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "seek", seek)
    monkeypatch.setattr(soundfile.SoundFile, "read", read)
    audio.crop(index, 100, 50)
    # frames 100..149 cover samples 100 * 160 .. 149 * 160 + 320
    # (soundfile's read() asks for its position through seek(0, SEEK_CUR) too)
    assert reads[0] == ("seek", 16000)
    assert [r for r in reads if r[0] == "read"] == [("read", 320 + 49 * 160)]


def test_pipes_and_utterance_normalised_features_are_refused(recipe, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("utt2spk", "spk2utt", "utt2num_frames"):
        (data / name).write_text((recipe / "data/x" / name).read_text())
    utts = [line.split()[0] for line in (recipe / "data/x/utt2spk").read_text().splitlines()]
    (data / "wav.scp").write_text("".join(f"{u} ffmpeg -i {u}.m4a -f wav - |\n" for u in utts))
    with pytest.raises(RecipeError) as error:
        read_training_set(str(data), "on_the_fly", str(SPECTROGRAM))
    assert str(error.value) == (
        f"{data}/wav.scp: utterance {utts[0]} is read through a command ('ffmpeg -i "
        f"{utts[0]}.m4a -f wav - |'); on-the-fly features seek into audio files and cannot read "
        f"pipes. Pack the data dir into shards, which decodes it once (steps/make_shards.sh, "
        f"data.features: shards), convert the corpus to wav or flac files, or train on "
        f"precomputed features (data.features: precomputed)")
    config = tmp_path / "spectrogram.conf"
    config.write_text(SPECTROGRAM.read_text().replace("--normalize-mean=false",
                                                      "--normalize-mean=true"))
    with pytest.raises(RecipeError, match="on-the-fly features are computed per crop, so they "
                                          "cannot be normalised over the utterance"):
        read_training_set(str(recipe / "data/x"), "on_the_fly", str(config))


def test_a_file_shorter_than_its_frame_count_names_the_utterance(recipe, tmp_path):
    audio = read_training_set(str(recipe / "data/x"), "on_the_fly", str(SPECTROGRAM))
    index = int(np.argmax(audio.num_frames))
    short = tmp_path / "short.wav"
    tiny_data.write_wav(short, tiny_data.tone(0.5))
    audio.source.paths[index] = str(short)
    with pytest.raises(RecipeError, match=f"utterance {audio.utts[index]}: '{short}' ends "
                                          f"[0-9]+ samples before the crop does; the file "
                                          f"changed after utt2num_frames was written"):
        audio.crop(index, int(audio.num_frames[index]) - 40, 40)


@pytest.mark.slow
def test_training_on_the_fly_with_augmentation_trains_on_the_augmented_crops(recipe, tmp_path):
    """Through the entry point, with the config file: every step's model input is the
    augmented crops for (seed, epoch, step), with the sped-up crops labelled as speakers of
    their own; the head has a class per speaker and speed."""
    from pytorch_modules.config import AugmentConfig
    from pytorch_modules.data.batch_plan import EpochBatches
    from pytorch_modules.data.training_set import CropDataset

    from train_inputs import train_recording_inputs

    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=2, num_workers=1)
    config.write_text(config.read_text().replace(
        "num_workers: 1}", f"num_workers: 1, features: on_the_fly, "
                           f"spectrogram_config: {SPECTROGRAM}}}\n"
                           f"augment: {{noise_prob: 0.5, babble_prob: 0.5, speed_prob: 0.5, "
                           f"speed_new_speakers: true}}"))
    result, steps = train_recording_inputs(config, recipe / "data/x", tmp_path / "exp")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "exp/final.pt").exists()
    options = AugmentConfig(noise_prob=0.5, babble_prob=0.5, speed_prob=0.5,
                            speed_new_speakers=True)
    data = read_training_set(str(recipe / "data/x"), "on_the_fly", str(SPECTROGRAM), options)
    clean = read_training_set(str(recipe / "data/x"), "on_the_fly", str(SPECTROGRAM))
    batches = EpochBatches(data.num_frames, 4, 40, seed=5)   # tiny_data's seed and batch
    per_epoch = batches.steps_per_epoch()
    assert len(steps) == 2 * per_epoch
    changed, labels_seen = [], []
    for n, (feats, labels) in enumerate(steps):
        epoch, step = 1 + n // per_epoch, n % per_epoch
        augmented, expected_labels = CropDataset(data, batches, epoch, step)[0]
        np.testing.assert_allclose(feats, augmented.numpy(), rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(labels, expected_labels.numpy())
        plain, speakers = CropDataset(clean, batches, epoch, step)[0]
        np.testing.assert_array_equal(labels % 2, speakers.numpy())   # 2 speakers
        changed += [not np.allclose(f, c, rtol=1e-5, atol=1e-3)
                    for f, c in zip(feats, plain.numpy())]
        labels_seen += labels.tolist()
    assert 0 < sum(changed) < len(changed) and max(labels_seen) >= 2, (changed, labels_seen)
    # The head had a class per speaker and speed (1.0, 0.9, 1.1); the checkpoint keeps it.
    last = sorted((tmp_path / "exp/checkpoints").glob("*.pt"))[-1]
    head = torch.load(last, weights_only=True)["head"]
    speakers = len(torch.load(tmp_path / "exp/final.pt", weights_only=True)["speakers"])
    assert [w.shape[0] for w in head.values() if w.dim() == 2] == [3 * speakers]
    config.write_text(config.read_text().replace("on_the_fly", "from_audio"))
    result = tiny_data.train(config, recipe / "data/x", tmp_path / "exp2")
    assert result.returncode == 1
    assert ("data.features is 'from_audio', but it must be one of precomputed, on_the_fly, shards"
            in result.stderr)
