"""Shards (steps/make_shards.sh, data.features: shards): a data dir packed into tar shards of
FLAC members gives the same crops as the audio files, every utterance once; the epoch plan
streams the shards through a shuffle buffer and is a function of (seed, epoch); a truncated
shard names itself and the member."""
import numpy as np
import pytest
import torch

from pytorch_modules.config import AugmentConfig
from pytorch_modules.data.batch_plan import ShardBatches
from pytorch_modules.data.training_set import CropDataset, epoch_batches, read_training_set
from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.shards import read_index, stream_order

import tiny_data

SPECTROGRAM = str(tiny_data.ROOT / "conf/spectrogram.conf")


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """3 speakers x 4 utterances (16-bit wav, one through a pipe), packed in shards of 5."""
    def write_audio(n, utt, folder):
        path = tiny_data.write_wav(folder / f"{utt}.wav", tiny_data.tone(0.5 + 0.1 * n, seed=n))
        return f"cat {path} |" if n == 0 else str(path)

    recipe, sources = tiny_data.recipe_with_audio(tmp_path_factory.mktemp("shards"), 3, 4,
                                                  write_audio)
    result = tiny_data.run_script(recipe, "steps/make_shards.sh", "--nj", "2", "--shard-size",
                                  "5", "data/x", "shards/x")
    assert result.returncode == 0, result.stderr
    return recipe, sources


def test_every_utterance_is_in_one_shard_with_its_speaker(packed):
    recipe, sources = packed
    tars = (recipe / "data/x/shards.list").read_text().splitlines()
    assert [t.rsplit("/", 1)[1] for t in tars] == ["shard_000000.tar", "shard_000001.tar",
                                                  "shard_000002.tar"]
    rows = [row for tar in tars for row in read_index(tar)]
    assert (sorted(r[0] for r in rows) == sorted(sources)
            and [len(read_index(t)) for t in tars] == [5, 5, 2])
    assert all(r[1] == r[0].split("-")[0] for r in rows)
    assert len({r[1] for r in read_index(tars[0])}) > 1   # a shard mixes speakers


def test_crops_from_shards_equal_the_ark_features_of_the_same_frames(packed):
    recipe, _ = packed
    from_shards = read_training_set(str(recipe / "data/x"), "shards", SPECTROGRAM)
    from_arks = read_training_set(str(recipe / "data/x"))
    for i, utt in enumerate(from_shards.utts):
        j = from_arks.utts.index(utt)
        assert from_shards.num_frames[i] == from_arks.num_frames[j]
        assert (from_shards.speakers[from_shards.labels[i]]
                == from_arks.speakers[from_arks.labels[j]])
        np.testing.assert_allclose(from_shards.crop(i, 3, 30), from_arks.crop(j, 3, 30),
                                   rtol=0, atol=1e-4, err_msg=utt)


def test_the_stream_order_reads_shards_in_turn_through_the_buffer():
    sizes = [100, 100, 100, 50]
    order = stream_order(sizes, buffer=20, seed=3, epoch=1)
    assert sorted(order.tolist()) == list(range(350))          # each utterance once
    assert np.array_equal(order, stream_order(sizes, 20, 3, 1))
    assert not np.array_equal(order, stream_order(sizes, 20, 3, 2))
    shard_of = np.repeat(np.arange(4), sizes)
    # an item leaves at most `buffer` places after the stream brought it: the first 80 come
    # from the first shard of the epoch's order and at most 20 items of the next
    first = shard_of[order[0]]
    assert (shard_of[order[:80]] == first).sum() >= 60
    # with a buffer of one the stream is the shards one after another, members in tar order
    plain = stream_order(sizes, buffer=1, seed=3, epoch=1)
    assert (np.diff(shard_of[plain]) != 0).sum() == 3          # four runs, one per shard
    for s in range(4):
        members = plain[shard_of[plain] == s]
        assert np.array_equal(members, np.sort(members))


def test_the_shard_plan_resumes_and_splits_over_processes_exactly(packed):
    recipe, _ = packed
    data = read_training_set(str(recipe / "data/x"), "shards", SPECTROGRAM)
    plan = epoch_batches(data, 4, 30, seed=5, shuffle_buffer=3)
    assert isinstance(plan, ShardBatches) and plan.steps_per_epoch() == 3
    whole = CropDataset(data, plan, epoch=1, first_step=0)
    assert torch.equal(whole[2][0], CropDataset(data, plan, 1, first_step=2)[0][0])
    halves = [CropDataset(data, plan, 1, 0, rank=r, world_size=2)[1][0] for r in (0, 1)]
    assert torch.equal(torch.stack([halves[k % 2][k // 2] for k in range(4)]), whole[1][0])


def test_a_truncated_shard_names_itself_and_the_member(packed, tmp_path):
    recipe, _ = packed
    data = read_training_set(str(recipe / "data/x"), "shards", SPECTROGRAM)
    tar, rest = data.source.paths[-1].rsplit("@", 1)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(open(tar, "rb").read()[:int(rest.split("+")[0]) + 100])
    data.source.paths[-1] = f"{cut}@{rest}"
    with pytest.raises(RecipeError, match=f"shard {cut} is truncated or damaged: cannot read "
                                          f"member {data.utts[-1]}.flac"):
        data.crop(len(data) - 1, 0, 20)
    (recipe / "data/y").mkdir()
    with pytest.raises(RecipeError, match="data/y/shards.list does not exist; pack the data "
                                          "dir first: steps/make_shards.sh"):
        read_training_set(str(recipe / "data/y"), "shards", SPECTROGRAM)


def test_a_rerun_keeps_complete_shards(packed):
    recipe, _ = packed
    tars = (recipe / "data/x/shards.list").read_text().splitlines()
    before = open(tars[0], "rb").read()
    result = tiny_data.run_script(recipe, "steps/make_shards.sh", "--nj", "2", "--shard-size",
                                  "5", "data/x", "shards/x")
    assert result.returncode == 0 and "already done" in result.stdout
    assert open(tars[0], "rb").read() == before


@pytest.mark.slow
def test_training_from_shards_with_augmentation_trains_on_the_augmented_crops(packed, tmp_path):
    """Through the entry point, with the config file: every step's model input is the
    augmented crops of the shard plan for (seed, epoch, step), not the clean ones; noise on
    half the crops leaves some crops as they were and changes the others."""
    from train_inputs import train_recording_inputs

    recipe, _ = packed
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1, num_workers=1)
    config.write_text(config.read_text().replace(
        "num_workers: 1}", f"num_workers: 1, features: shards, shuffle_buffer: 4, "
                           f"spectrogram_config: {SPECTROGRAM}}}\naugment: {{noise_prob: 0.5}}"))
    result, steps = train_recording_inputs(config, recipe / "data/x", tmp_path / "exp")
    assert result.returncode == 0, result.stderr
    assert "training on 12 utterances of 3 speakers" in result.stdout
    assert (tmp_path / "exp/final.pt").exists()
    data = read_training_set(str(recipe / "data/x"), "shards", SPECTROGRAM,
                             AugmentConfig(noise_prob=0.5))
    clean = read_training_set(str(recipe / "data/x"), "shards", SPECTROGRAM)
    plan = epoch_batches(data, 4, 40, seed=5, shuffle_buffer=4)   # tiny_data's seed and batch
    assert len(steps) == plan.steps_per_epoch() == 3
    changed = []
    for step, (feats, labels) in enumerate(steps):
        augmented, expected_labels = CropDataset(data, plan, 1, step)[0]
        np.testing.assert_allclose(feats, augmented.numpy(), rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(labels, expected_labels.numpy())
        plain = CropDataset(clean, plan, 1, step)[0][0].numpy()
        changed += [not np.allclose(f, c, rtol=1e-5, atol=1e-3) for f, c in zip(feats, plain)]
    assert 0 < sum(changed) < len(changed), changed


@pytest.mark.slow
def test_shards_do_not_depend_on_nj_and_skip_unusable_audio(tmp_path):
    """README "Shards for large corpora": which utterances share a shard is a seeded shuffle
    of the whole set, independent of --nj, and unusable audio is skipped as in stage 2 (here
    a missing, an empty and a silent file), each named in its job's log.  Every member holds
    its wav file's 16-bit samples exactly."""
    import io
    import tarfile

    import soundfile

    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    sources, bad = {}, {}
    for n, utt in enumerate(tiny_data.utt_ids(3, 5)):
        sources[utt] = str(tiny_data.write_wav(tmp_path / f"audio/{utt}.wav",
                                               tiny_data.tone(0.3 + 0.03 * n, seed=n)))
    bad["spk1-001"] = str(tmp_path / "audio/gone.wav")
    (tmp_path / "audio/empty.wav").write_bytes(b"")
    bad["spk2-002"] = str(tmp_path / "audio/empty.wav")
    bad["spk3-003"] = str(tiny_data.write_wav(tmp_path / "audio/silent.wav",
                                              np.zeros(8000, np.float32)))
    listed = {**sources, **bad}
    members = {}
    for name, nj in (("a", "1"), ("b", "3")):
        tiny_data.write_audio_dir(recipe / f"data/{name}", listed)
        result = tiny_data.run_script(recipe, "steps/make_shards.sh", "--nj", nj,
                                      "--shard-size", "4", f"data/{name}", f"shards/{name}")
        assert result.returncode == 0, result.stderr
        tars = (recipe / f"data/{name}/shards.list").read_text().splitlines()
        members[name] = [[row[:2] + (row[4],) for row in read_index(t)] for t in tars]
        logs = "".join(p.read_text() for p in (recipe / f"shards/{name}/log").glob("*.log"))
        for utt in bad:
            assert f"make_shards: skipping: utterance {utt}" in logs, (utt, logs)
        for tar in tars:   # read with Python's tarfile: the index must point at the member
            with tarfile.open(tar) as archive:
                for utt, spk, offset, size, samples in read_index(tar):
                    member = archive.getmember(f"{utt}.flac")
                    assert (member.offset_data, member.size) == (offset, size)
                    got = soundfile.read(io.BytesIO(archive.extractfile(member).read()),
                                         dtype="int16")[0]
                    expected = soundfile.read(sources[utt], dtype="int16")[0]
                    assert spk == utt.split("-")[0] and samples == len(expected)
                    np.testing.assert_array_equal(got, expected)
    assert members["a"] == members["b"]
    in_shards = [utt for shard in members["a"] for utt, _, _ in shard]
    kept = sorted(set(tiny_data.utt_ids(3, 5)) - set(bad))
    assert sorted(in_shards) == kept and len(in_shards) == len(kept)
    assert in_shards[:4] != kept[:4]   # shuffled, not cut from the sorted list
