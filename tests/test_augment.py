"""Augmentation of training crops (config augment:, pytorch_modules/data/augment.py): SNRs and noise
colours against their definitions, babble made of other speakers only, and every draw a
function of (seed, epoch, step, place in the global batch)."""
import numpy as np
import pytest
import soundfile
import torch

import tiny_data
from pytorch_modules.data.augment import (augment, coloured_noise, reverberate, scale_to_snr,
                                          spec_mask)
from pytorch_modules.data.augment_sources import AugmentSources
from pytorch_modules.config import AugmentConfig, ConfigError, config_from_dict
from pytorch_modules.data.training_set import CropDataset, EpochBatches, read_training_set
from pytorch_modules.errors import RecipeError

SPECTROGRAM = str(tiny_data.ROOT / "conf/spectrogram.conf")


def power(x):
    return float(np.mean(np.square(x, dtype=np.float64)))


def test_noise_is_scaled_to_the_asked_snr():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(8000).astype(np.float32) * 0.1
    noise = rng.standard_normal(8000).astype(np.float32) * 3.0
    for snr in (0.0, 5.0, 17.5):
        scaled = scale_to_snr(signal, noise, snr)
        assert 10 * np.log10(power(signal) / power(scaled)) == pytest.approx(snr, abs=1e-4)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_coloured_noise_has_the_asked_spectral_slope(beta):
    noise = coloured_noise(2**16, beta, np.random.default_rng(1)).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    # slope of log power against log frequency over octave bands from 100 to 25,000 bins
    edges = np.geomspace(100, 25_000, 9).astype(int)
    centres = np.sqrt(edges[:-1] * edges[1:])
    band_power = [spectrum[lo:hi].mean() for lo, hi in zip(edges[:-1], edges[1:])]
    slope = np.polyfit(np.log(centres), np.log(band_power), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.1)


def test_reverberation_is_the_convolution_aligned_on_the_direct_path_at_unit_energy():
    rng = np.random.default_rng(6)
    samples = rng.standard_normal(500).astype(np.float32)
    rir = np.zeros(40, np.float32)
    rir[5], rir[12], rir[30] = 2.0, -1.0, 0.5           # direct path at 5, two reflections
    wet = reverberate(samples, rir)
    unit = rir / np.sqrt(5.25)
    expected = np.convolve(samples, unit)[5:505]        # from the direct sound on
    assert wet.shape == samples.shape
    np.testing.assert_allclose(wet, expected, atol=1e-5)
    # a pure delay of the direct path only gives the input back, at its level
    delay = np.zeros(40, np.float32)
    delay[7] = 0.3
    np.testing.assert_allclose(reverberate(samples, delay), samples, atol=1e-5)


class GeneratedNoiseOnly:
    """augment()'s sources without any file list: the noise is generated."""

    def noise(self, length, rng):
        return None


def test_augment_adds_noise_at_an_snr_in_the_range_and_nothing_when_off():
    rng = np.random.default_rng(2)
    samples = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    options = AugmentConfig(noise_prob=1.0, noise_snr=[7.0, 7.0])
    out = augment(samples, np.random.default_rng(3), options, GeneratedNoiseOnly())
    assert 10 * np.log10(power(samples) / power(out - samples)) == pytest.approx(7.0, abs=1e-3)
    off = AugmentConfig(noise_prob=0.0, babble_prob=0.0)
    assert np.array_equal(augment(samples, np.random.default_rng(3), off, None), samples)


@pytest.fixture(scope="module")
def audio_set(tmp_path_factory):
    """On-the-fly training set of 2 speakers x 3 utterances, with stage-2 utt2num_frames."""
    def write_audio(n, utt, folder):
        path = folder / f"{utt}.wav"
        soundfile.write(path, tiny_data.tone(0.8 + 0.2 * n, seed=n), tiny_data.RATE,
                        subtype="FLOAT")
        return str(path)

    recipe, sources = tiny_data.recipe_with_audio(tmp_path_factory.mktemp("augment"), 2, 3,
                                                  write_audio)
    return str(recipe / "data/x"), sources


def contains(haystack, row):
    return (np.lib.stride_tricks.sliding_window_view(haystack, len(row)) == row).all(1).any()


def test_babble_is_made_of_stretches_of_other_speakers_only(audio_set):
    data_dir, sources = audio_set
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM,
                             AugmentConfig(babble_prob=1.0))
    audio = {utt: soundfile.read(path, dtype="float32")[0] for utt, path in sources.items()}
    rows = AugmentSources(data, 0).babble(20, 4000, np.random.default_rng(4))
    for row in rows:
        found = [utt for utt, samples in audio.items() if contains(samples, row)]
        assert found and all(data.speakers[data.labels[data.utts.index(u)]] == "spk2"
                             for u in found), found


def test_noise_music_and_babble_come_from_their_file_lists(audio_set, tmp_path):
    data_dir, _ = audio_set
    files = {}
    for kind, seconds in (("noise", 0.2), ("music", 3.0), ("speech", 1.0)):
        path = tmp_path / f"{kind}.wav"
        soundfile.write(path, tiny_data.tone(seconds, seed=len(kind)), 16000, subtype="FLOAT")
        (tmp_path / f"{kind}.list").write_text(f"{path}\n")
        files[kind] = soundfile.read(path, dtype="float32")[0]
    options = AugmentConfig(noise_prob=1.0, music_prob=1.0, babble_prob=1.0,
                            noise_list=str(tmp_path / "noise.list"),
                            music_list=str(tmp_path / "music.list"),
                            babble_list=str(tmp_path / "speech.list"))
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)
    sources = AugmentSources(data, 0)
    rng = np.random.default_rng(8)
    noise = sources.noise(8000, rng)                  # the 0.2-s file, repeated
    assert np.array_equal(noise, np.resize(files["noise"], 8000))
    assert contains(files["music"], sources.music(8000, rng))
    assert all(contains(files["speech"], row) for row in sources.babble(3, 8000, rng))
    (tmp_path / "music.list").write_text(str(tmp_path / "gone.wav") + "\n")
    with pytest.raises(RecipeError, match=f"{tmp_path}/music.list line 1: music file "
                                          f"{tmp_path}/gone.wav does not exist"):
        read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)


def test_augmented_crops_depend_only_on_seed_epoch_step_and_place(audio_set):
    data_dir, _ = audio_set
    options = AugmentConfig(noise_prob=0.5, babble_prob=0.5, babble_speakers=[1, 2])
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)
    clean = read_training_set(data_dir, "on_the_fly", SPECTROGRAM)
    batches = EpochBatches(data.num_frames, 4, 40, seed=9)
    whole = CropDataset(data, batches, epoch=2, first_step=0)
    resumed = CropDataset(data, batches, epoch=2, first_step=1)   # a run resumed at step 1
    assert torch.equal(whole[1][0], resumed[0][0])
    # two processes, each half of the global batch: together the one-process batch
    halves = [CropDataset(data, batches, 2, 0, rank=r, world_size=2)[1][0] for r in (0, 1)]
    merged = torch.stack([halves[k % 2][k // 2] for k in range(4)])
    assert torch.equal(merged, whole[1][0])
    assert not torch.equal(whole[1][0], CropDataset(clean, batches, 2, 0)[1][0])
    assert not torch.equal(whole[0][0], CropDataset(data, batches, 3, 0)[0][0])   # next epoch


def test_simulated_rooms_are_reproducible_and_feed_reverb(audio_set, tmp_path):
    rooms = tmp_path / "rooms"
    result = tiny_data.run_python(tiny_data.ROOT / "local/make_simulated_rirs.py",
                                  "--num-rooms", "3", "--seed", "5", rooms)
    assert result.returncode == 0, result.stderr
    paths = (rooms / "rir.list").read_text().splitlines()
    assert len(paths) == 3 and all(p.endswith(f"room_{n:04d}.wav") for n, p in enumerate(paths))
    rir, rate = soundfile.read(paths[0], dtype="float32")
    assert rate == 16000 and np.argmax(np.abs(rir)) > 0   # the direct sound takes time
    rows = [line.split("\t") for line in (rooms / "rooms.tsv").read_text().splitlines()]
    assert all(0.2 <= float(row[4]) <= 0.8 for row in rows)   # target RT60 (s)
    again = tmp_path / "again"
    tiny_data.run_python(tiny_data.ROOT / "local/make_simulated_rirs.py", "--num-rooms", "3",
                         "--seed", "5", again)
    assert np.array_equal(soundfile.read(again / "wav/room_0002.wav")[0],
                          soundfile.read(rooms / "wav/room_0002.wav")[0])

    data_dir, _ = audio_set
    options = AugmentConfig(reverb_prob=1.0, rir_list=str(rooms / "rir.list"))
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)
    clean = read_training_set(data_dir, "on_the_fly", SPECTROGRAM)
    wet = data.crop(0, 0, 40, np.random.default_rng(1))
    assert wet.shape == (40, 161) and not np.allclose(wet, clean.crop(0, 0, 40))
    (rooms / "rir.list").write_text(paths[0] + "\n" + str(rooms / "gone.wav") + "\n")
    with pytest.raises(RecipeError, match=f"{rooms}/rir.list line 2: room impulse response file "
                                          f"{rooms}/gone.wav does not exist"):
        read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)


def test_augmentation_needs_on_the_fly_features_and_ranges():
    with pytest.raises(ConfigError, match="augment: noise, music, babble, reverb and speed need "
                                          r"the crops computed from the audio \(data.features: "
                                          r"on_the_fly or shards\)"):
        config_from_dict({"augment": {"noise_prob": 0.6}}, "x.yaml")
    # Masks need no audio: precomputed arks take them.
    assert config_from_dict({"augment": {"spec_mask_prob": 0.5}}).augment.enabled
    with pytest.raises(ConfigError, match=r"augment.freq_mask_bins is 0, but it must be > 0"):
        config_from_dict({"augment": {"spec_mask_prob": 0.5, "freq_mask_bins": 0}}, "x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml: augment.babble_prob is 1.5, but it must be "
                                          r"in \[0, 1\]"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"babble_prob": 1.5}}, "x.yaml")
    with pytest.raises(ConfigError, match=r"augment.noise_snr is \[15.0, 0.0\], but it must be "
                                          r"\[low, high\] with low <= high"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"noise_snr": [15, 0]}}, "x.yaml")
    with pytest.raises(ConfigError, match="augment.reverb_prob needs augment.rir_list"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"reverb_prob": 0.5}}, "x.yaml")


def test_spec_masks_set_bands_and_spans_to_their_bins_mean():
    """Each mask replaces 1..max bins (frames) by the crop's per-bin mean; the rest is kept."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 30)).astype(np.float32) + np.arange(30, dtype=np.float32)
    options = AugmentConfig(spec_mask_prob=1.0, freq_masks=1, freq_mask_bins=5, time_masks=1,
                            time_mask_frames=8)
    mean = feats.mean(axis=0)
    for seed in range(20):
        out = spec_mask(feats, np.random.default_rng(seed), options)
        changed = out != feats
        bands = np.flatnonzero(changed.all(axis=0))    # masked bins: every frame changed
        spans = np.flatnonzero(changed.all(axis=1))    # masked frames: every bin changed
        assert 1 <= len(bands) <= 5 and np.all(np.diff(bands) == 1)
        assert 1 <= len(spans) <= 8 and np.all(np.diff(spans) == 1)
        assert np.allclose(out[:, bands], mean[bands]) and np.allclose(out[spans], mean)
        kept = np.ones_like(changed)
        kept[:, bands] = kept[spans] = False
        assert np.array_equal(out[kept], feats[kept])
    none = AugmentConfig(spec_mask_prob=1.0, freq_masks=0, time_masks=0)
    assert np.array_equal(spec_mask(feats, np.random.default_rng(1), none), feats)


def test_spec_masks_on_ark_crops_are_drawn_from_seed_epoch_step_and_place(audio_set):
    """On precomputed features: a masked crop is the ark crop with masks, and a resumed run,
    or two processes, draw the same masks."""
    data_dir, _ = audio_set
    options = AugmentConfig(spec_mask_prob=1.0, time_mask_frames=5)
    data = read_training_set(data_dir, "precomputed", SPECTROGRAM, options)
    clean = read_training_set(data_dir, "precomputed", SPECTROGRAM)
    batches = EpochBatches(data.num_frames, 4, 40, seed=9)
    whole = CropDataset(data, batches, epoch=2, first_step=0)
    masked, plain = whole[1][0], CropDataset(clean, batches, 2, 0)[1][0]
    assert torch.equal(CropDataset(data, batches, 2, first_step=1)[0][0], masked)
    halves = [CropDataset(data, batches, 2, 0, rank=r, world_size=2)[1][0] for r in (0, 1)]
    assert torch.equal(torch.stack([halves[k % 2][k // 2] for k in range(4)]), masked)
    for crop, ark in zip(masked.numpy(), plain.numpy()):   # each (bins, frames)
        changed = crop != ark
        assert changed.any() and not changed.all()
        bins = np.flatnonzero(changed.all(axis=1))
        assert len(bins) >= 1
        assert np.allclose(crop[bins], ark[bins].mean(axis=1, keepdims=True))


@pytest.mark.parametrize("speed, peak_hz", [(1.0, 1000), (1.1, 1100), (0.9, 900)])
def test_speed_perturbation_moves_a_tone_by_its_factor(tmp_path, speed, peak_hz):
    from pytorch_modules.data.audio_crops import audio_crop
    from pytorch_modules.features.spectrogram import parse_options_file

    options = parse_options_file(SPECTROGRAM)
    t = np.arange(3 * 16000) / 16000
    path = tmp_path / "tone.wav"
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 16000,
                    subtype="FLOAT")
    feats = audio_crop("u", str(path), 100, 50, 299, options, speed=speed)
    assert feats.shape == (50, 161)
    peak_bins = feats.argmax(axis=1)             # 50 Hz per bin
    assert (peak_bins == peak_hz // 50).all()


def test_speed_perturbation_through_the_training_set(audio_set):
    data_dir, _ = audio_set
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM,
                             AugmentConfig(speed_prob=1.0, speed_factors=[1.1]))
    clean = read_training_set(data_dir, "on_the_fly", SPECTROGRAM)
    index = int(np.argmax(data.num_frames))
    fast = data.crop(index, 10, 40, np.random.default_rng(0))
    assert fast.shape == (40, 161) and not np.allclose(fast, clean.crop(index, 10, 40))
    with pytest.raises(ConfigError, match=r"augment.speed_factors is \[0.3\], but it must be "
                                          r"all in \[0.5, 2\]"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"speed_prob": 0.5, "speed_factors": [0.3]}}, "x.yaml")


def test_speed_perturbed_crops_can_be_speakers_of_their_own(audio_set):
    data_dir, _ = audio_set
    options = AugmentConfig(speed_prob=0.5, speed_factors=[0.9, 1.1], speed_new_speakers=True)
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)
    same_label = read_training_set(data_dir, "on_the_fly", SPECTROGRAM,
                                   AugmentConfig(speed_prob=0.5, speed_factors=[0.9, 1.1]))
    speakers = len(data.speakers)
    assert data.num_classes == 3 * speakers and same_label.num_classes == speakers
    index = int(np.argmax(data.num_frames))
    clean = same_label.crop(index, 10, 40)
    seen = set()
    for seed in range(40):
        feats, label = data.labelled_crop(index, 10, 40, np.random.default_rng(seed))
        kept, kept_label = same_label.labelled_crop(index, 10, 40, np.random.default_rng(seed))
        np.testing.assert_array_equal(feats, kept)    # the same draws, only the label differs
        assert kept_label == data.labels[index]
        offset, speaker = divmod(label, speakers)
        assert speaker == data.labels[index]
        # offset 0: the speed left alone; 1: factor 0.9; 2: factor 1.1.
        assert np.allclose(feats, clean) == (offset == 0)
        seen.add(offset)
    assert seen == {0, 1, 2}
    with pytest.raises(ConfigError, match="augment.speed_new_speakers needs augment.speed_prob"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"speed_new_speakers": True}}, "x.yaml")


def test_musan_and_rirs_noises_are_listed_for_the_augment_section(tmp_path):
    layout = ["musan/noise/free-sound/noise-free-sound-0000.wav",
              "musan/music/fma/music-fma-0000.wav", "musan/music/jamendo/music-jamendo-0001.wav",
              "musan/speech/us-gov/speech-us-gov-0000.wav",
              "RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00001.wav",
              "RIRS_NOISES/real_rirs_isotropic_noises/RVB2014_type1_rir_largeroom1_near_angla.wav"]
    for rel in layout:
        tiny_data.write_wav(tmp_path / rel, tiny_data.tone(0.1))
    result = tiny_data.run_python(tiny_data.ROOT / "local/prepare_augment_lists.py",
                                  "--musan-root", tmp_path / "musan",
                                  "--rirs-root", tmp_path / "RIRS_NOISES", tmp_path / "data")
    assert result.returncode == 0, result.stderr
    listed = {name: (tmp_path / "data" / name).read_text().splitlines()
              for name in ("musan/noise.list", "musan/music.list", "musan/speech.list",
                           "rirs/rir.list")}
    assert listed["musan/music.list"] == [str(tmp_path / layout[1]), str(tmp_path / layout[2])]
    assert listed["rirs/rir.list"] == [str(tmp_path / layout[4])]   # simulated rooms only
    config = config_from_dict({"data": {"features": "on_the_fly"}, "augment": {
        "music_prob": 0.5, "music_list": str(tmp_path / "data/musan/music.list")}})
    assert config.augment.enabled
    result = tiny_data.run_python(tiny_data.ROOT / "local/prepare_augment_lists.py",
                                  "--musan-root", tmp_path / "nowhere", tmp_path / "data")
    assert result.returncode == 1 and result.stderr.startswith(
        f"prepare_augment_lists.py: {tmp_path}/nowhere/noise holds no wav files; --musan-root "
        f"must be the unpacked MUSAN folder")


def test_killed_augmented_training_resumes_to_the_same_model(tmp_path):
    """kill -9 mid-epoch with every crop computed from the audio, noised, babbled, sped up (as
    speakers of their own) and masked: the rerun ends bit for bit where the uninterrupted run
    does."""
    from test_resume import KILL_AFTER, differing_tensors, start_and_kill_mid_epoch, train_command

    def write_audio(n, utt, folder):
        path = folder / f"{utt}.wav"
        soundfile.write(path, tiny_data.tone(0.9 + 0.05 * n, seed=n), tiny_data.RATE,
                        subtype="PCM_16")
        return str(path)

    # 4 speakers x 8 utterances: 8 steps of 4 crops an epoch, a checkpoint every 2 steps
    recipe, _ = tiny_data.recipe_with_audio(tmp_path, 4, 8, write_audio)
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml")
    config.write_text(config.read_text().replace(
        "num_workers: 0}", f"num_workers: 0, features: on_the_fly, spectrogram_config: "
                           f"{SPECTROGRAM}}}\naugment: {{noise_prob: 0.5, babble_prob: 0.5, "
                           f"babble_speakers: [1, 2], speed_prob: 0.7, "
                           f"speed_new_speakers: true, spec_mask_prob: 0.5}}"))
    data = recipe / "data/x"
    straight, resumed = tmp_path / "exp_straight", tmp_path / "exp_resumed"
    result = tiny_data.train(config, data, straight)
    assert result.returncode == 0, result.stderr
    start_and_kill_mid_epoch(train_command(config, data, resumed), resumed)
    left = sorted(p.name for p in (resumed / "checkpoints").glob("epoch_*.pt"))
    assert left and left[-1].startswith(KILL_AFTER), f"not killed mid-epoch: {left}"
    result = tiny_data.train(config, data, resumed)
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout
    assert differing_tensors(straight / "final.pt", resumed / "final.pt") == []
    assert differing_tensors(straight / "checkpoints/epoch_002.pt",
                             resumed / "checkpoints/epoch_002.pt") == []
