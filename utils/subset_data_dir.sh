#!/usr/bin/env bash
# Copies a Kaldi data dir keeping the first <n> utterances of each speaker (in spk2utt order),
# as Kaldi's utils/subset_data_dir.sh --per-spk does: wav.scp, utt2spk, feats.scp and
# utt2num_frames (those present) are filtered, and spk2utt is written by utils/fix_data_dir.sh.
# <dest-dir> is emptied first (a .lock file in it is kept).
#
#   usage: utils/subset_data_dir.sh --per-spk <src-data-dir> <n> <dest-dir>
set -euo pipefail
usage="usage: $0 --per-spk <src-data-dir> <n> <dest-dir>"
[ $# -eq 4 ] && [ "$1" = --per-spk ] || { echo "$usage" >&2; exit 1; }
src=$2
n=$3
dest=$4
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "$0: <n> must be a positive number, not '$n'" >&2; exit 1; }
[ -f "$src/spk2utt" ] || { echo "$0: $src/spk2utt does not exist; run utils/fix_data_dir.sh $src" >&2; exit 1; }
utils=$(dirname "${BASH_SOURCE[0]}")
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
awk -v n="$n" '{ for (i = 2; i <= NF && i <= n + 1; i++) print $i }' "$src/spk2utt" > "$dest/utts"
for f in wav.scp utt2spk feats.scp utt2num_frames; do
  [ ! -f "$src/$f" ] || "$utils/filter_scp.py" "$dest/utts" "$src/$f" > "$dest/$f"
done
"$utils/fix_data_dir.sh" "$dest"
