#!/usr/bin/env python3
"""Simulated room impulse responses for reverberation augmentation when RIRS_NOISES is not there
(augment.reverb_prob, pytorch_modules/data/augment.py), made with pyroomacoustics' image-source
model.

Usage:
  local/make_simulated_rirs.py [--num-rooms 200] [--seed 777] OUT_DIR

Each room is a shoebox of 3-10 m x 3-10 m x 2.5-4 m with a reverberation time drawn from
0.2-0.8 s (wall absorption and image order from Sabine's formula), one source and one
microphone at least 0.5 m from the walls; every draw comes from (seed, room number), so the same
options give the same files.  Writes
  OUT_DIR/wav/room_NNNN.wav   the impulse response at 16 kHz (float)
  OUT_DIR/rir.list            their paths, one per line: the augment.rir_list of a config
  OUT_DIR/rooms.tsv           room, sizes (m), target RT60 (s), source and microphone positions
A rerun with the same options keeps a complete OUT_DIR as it is (about 1 s a room to make).
"""
import argparse
import os
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require("numpy", "soundfile", "pyroomacoustics")

import numpy as np
import soundfile

from pytorch_modules.fileio.atomic import write_lines

RATE = 16000


def simulate_room(seed: int, number: int):
    """(impulse response, description) of room `number`."""
    import pyroomacoustics as pra  # only this script needs it

    rng = np.random.default_rng([seed, number])
    dims = [rng.uniform(3, 10), rng.uniform(3, 10), rng.uniform(2.5, 4)]
    rt60 = rng.uniform(0.2, 0.8)
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=RATE, materials=pra.Material(absorption), max_order=max_order)
    source = [rng.uniform(0.5, d - 0.5) for d in dims]
    mic = [rng.uniform(0.5, d - 0.5) for d in dims]
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float32)
    row = [f"{v:.2f}" for v in dims] + [f"{rt60:.3f}"] + [f"{v:.2f}" for v in source + mic]
    return rir, row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-rooms", type=int, default=200)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    if args.num_rooms < 1:
        parser.error("--num-rooms must be at least 1")
    info = f"num_rooms {args.num_rooms} seed {args.seed} rate {RATE}\n"
    info_path = os.path.join(args.out_dir, "info.txt")
    if os.path.isfile(info_path) and open(info_path).read() == info:
        print(f"{args.out_dir} already holds these rooms ({info.strip()}); leaving it as it is.")
        return 0
    os.makedirs(os.path.join(args.out_dir, "wav"), exist_ok=True)
    paths, rows = [], []
    for number in range(args.num_rooms):
        rir, row = simulate_room(args.seed, number)
        path = os.path.abspath(os.path.join(args.out_dir, "wav", f"room_{number:04d}.wav"))
        soundfile.write(path, rir, RATE, subtype="FLOAT")
        paths.append(path)
        rows.append(f"room_{number:04d}\t" + "\t".join(row))
    for name, lines in (("rooms.tsv", rows), ("rir.list", paths), ("info.txt", [info.strip()])):
        write_lines(os.path.join(args.out_dir, name), lines)
    print(f"make_simulated_rirs.py: wrote {args.num_rooms} room impulse responses to "
          f"{args.out_dir}/rir.list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
