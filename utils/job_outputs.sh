# shellcheck shell=bash
# Sourced by the steps that split a data dir into --nj jobs (make_spectrogram.sh,
# extract_embeddings.sh, make_shards.sh): the bookkeeping of the jobs' outputs.
#   forget_other_nj PREFIX NJ      job n of another --nj covered other utterances, so its
#                                  outputs PREFIX.<n>.* are no use now: removed when PREFIX.nj
#                                  names another number; PREFIX.nj then holds NJ
#   gather PREFIX.JOB.EXT NJ DEST  the jobs' lines, sorted, into DEST.tmp (the caller renames
#                                  it when the stage is judged done)

forget_other_nj() {
  local prefix=$1 nj=$2 f
  if [ "$(cat "$prefix.nj" 2>/dev/null)" != "$nj" ]; then
    for f in "$prefix".*; do
      if [[ "${f#"$prefix."}" =~ ^[0-9]+\. ]]; then rm -f "$f"; fi
    done
    echo "$nj" > "$prefix.nj"
  fi
}

gather() {
  local pattern=$1 nj=$2 dest=$3 n
  for n in $(seq "$nj"); do cat "${pattern//JOB/$n}"; done | sort > "$dest.tmp"
}
