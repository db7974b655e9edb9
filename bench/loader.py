"""Training-crop throughput of one data-loader worker: crops read from the stage-2 arks
(data.features: precomputed) against crops computed from the audio (on_the_fly), clean and with
each augmentation (every crop noised, every crop babbled, and conf/small_dam_aug.yaml's mix),
on a data dir that has both feats.scp and wav.scp (any data dir after stage 2), and from its
shards when steps/make_shards.sh has packed it (data.features: shards).

    python bench/loader.py data/voxceleb1_dev [--crop-frames 200 300] [--batches 20]

Each figure is utterances/s of data.CropDataset in this process (num_workers 0, i.e. per
worker), over --batches batches of 32 random crops after one warm-up batch, best of --repeats;
the ratio is on-the-fly against arks, measured in the same run.  Features and audio come from
the page cache after the first pass: the figures are CPU cost, not disk speed.
"""
import argparse
import os

import common
import torch

from pytorch_modules.config import AugmentConfig, load_config
from pytorch_modules.data.batch_plan import EpochBatches
from pytorch_modules.data.training_set import CropDataset, read_training_set


def rate(data, crop_frames, batches, repeats):
    plan = EpochBatches(data.num_frames, 32, crop_frames, 777)
    dataset = CropDataset(data, plan, 1, 0)
    batches = min(batches, len(dataset) - 1)
    dataset[0]   # warm-up: page cache, FFT plans

    def run():
        for i in range(1, batches + 1):
            dataset[i]

    seconds, _ = common.best_of(run, repeats)
    return batches * 32 / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("--crop-frames", type=int, nargs="+", default=[200, 300])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spectrogram-config", default="conf/spectrogram.conf")
    args = parser.parse_args()
    torch.set_num_threads(1)
    arks = read_training_set(args.data_dir)
    audio = read_training_set(args.data_dir, "on_the_fly", args.spectrogram_config)
    augmented = {
        "noise on every crop": AugmentConfig(noise_prob=1.0),
        "babble on every crop": AugmentConfig(babble_prob=1.0),
        "conf/small_dam_aug.yaml's mix": load_config("conf/small_dam_aug.yaml").augment,
    }
    packed = (read_training_set(args.data_dir, "shards", args.spectrogram_config)
              if os.path.isfile(f"{args.data_dir}/shards.list") else None)
    common.banner(f"one loader worker, {len(arks)} utterances of {args.data_dir}")
    for crop in args.crop_frames:
        ark_rate = rate(arks, crop, args.batches, args.repeats)
        audio_rate = rate(audio, crop, args.batches, args.repeats)
        common.figure(f"crops of {crop} frames from arks", ark_rate, "utt/s")
        common.figure(f"crops of {crop} frames from audio", audio_rate, "utt/s")
        common.ratio("  on-the-fly against arks", audio_rate, ark_rate)
        if packed is not None:   # steps/make_shards.sh has packed the data dir
            shard_rate = rate(packed, crop, args.batches, args.repeats)
            common.figure(f"crops of {crop} frames from shards", shard_rate, "utt/s")
            common.ratio("  shards against audio files", shard_rate, audio_rate)
        for name, options in augmented.items():
            data = read_training_set(args.data_dir, "on_the_fly", args.spectrogram_config, options)
            augmented_rate = rate(data, crop, args.batches, args.repeats)
            common.figure(f"  from audio, {name}", augmented_rate, "utt/s")
            common.ratio("    against clean on-the-fly", augmented_rate, audio_rate)
    print(f"   {common.load_line()}")


if __name__ == "__main__":
    main()
