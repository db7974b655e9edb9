#!/usr/bin/env bash
# Trains the speaker-embedding network (pytorch_modules/bin/train.py) as one job through $cmd.
# Rerunning continues from the newest checkpoint in <exp-dir>/checkpoints; <exp-dir>/final.pt
# is written when training is complete.
#
# One process by default.  With more than one process in all (--num-gpus N > 1, or
# --nproc-per-node N > 1 on the CPU, or --nnodes > 1) the job runs torchrun, which starts
# the processes of this node; each takes its share of every global batch (data.batch_size in
# the config is the global batch, whatever the number of processes).  For several nodes, run
# this script once per node, with the same options except --node-rank; the data dir and the exp
# dir must be on a filesystem that every node sees (rank 0 writes, every rank resumes from it).
set -euo pipefail

cmd=utils/launch_local.py
config=conf/rescnn_dam.yaml
set=()
show_log=true
num_gpus=0
nproc_per_node=1
nnodes=1
node_rank=0
master_addr=127.0.0.1
master_port=auto
cpu_malloc=auto
help_message="Usage: $0 [options] <train-data-dir> <exp-dir>
e.g.: $0 --config conf/rescnn_dam.yaml data/voxceleb2_dev exp/rescnn_dam
      $0 --num-gpus 4 --cmd \"\$cuda_cmd\" ... (one node, 4 GPUs, one process each)
      $0 --num-gpus 8 --nnodes 2 --node-rank 0|1 --master-addr node0 --master-port 29500 ...
Options:
  --cmd <launcher>          job launcher, e.g. \"\$cuda_cmd\" (default: $cmd); --num-gpus N
                            adds --gpu N to it
  --config <yaml>           training config (default: $config)
  --set <section.key=value> override a key of the config, e.g. --set optim.lr=0.05
                            (repeatable; <exp-dir>/config.yaml records the result)
  --show-log <true|false>   also print the training log while it runs (default: $show_log)
  --num-gpus <n>            GPUs of this node, one process each; 0 = train on the CPU with
                            the GPUs hidden (default: $num_gpus)
  --nproc-per-node <n>      CPU processes of this node (gloo), with --num-gpus 0
                            (default: $nproc_per_node)
  --nnodes <n>              nodes taking part (default: $nnodes)
  --node-rank <k>           this node's number, 0 .. nnodes-1 (default: $node_rank)
  --master-addr <host>      address of node 0, reachable from every node (default: $master_addr)
  --master-port <port>      free port on node 0 for the rendezvous; auto = a free port of
                            this machine with one node, 29500 with several (default: $master_port)
  --cpu-malloc <auto|system>  CPU training: auto keeps freed memory for the next step
                            (jemalloc when installed, else glibc without trimming), about
                            1.8x faster for the paper model on 2 cores; system = the C
                            library's default (default: $cpu_malloc)"

. ./path.sh
. utils/parse_options.sh
. utils/lock.sh
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
data=$1
dir=$2

die() { echo "$0: $*" >&2; exit 1; }

# A CPU training step frees and allocates again hundreds of MB of activations.  glibc hands
# such blocks back to the kernel and faults them in again at the next step: two thirds of a
# paper-model step on 2 cores went to that (bench/training.py --allocators).  Prints the
# environment that keeps freed memory: jemalloc told never to return pages (same peak memory),
# or, without jemalloc, glibc without mmap or trimming (faster alike, about 1.5x the peak).
keep_freed_memory_env() {
  local jemalloc
  # awk reads to the end: leaving early would kill ldconfig by SIGPIPE, which pipefail turns
  # into a failure of the whole line
  jemalloc=$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null |
             awk '$1 == "libjemalloc.so.2" && !found { print $NF; found = 1 }')
  if [ -n "$jemalloc" ]; then
    echo "$0: CPU memory allocator: $jemalloc, keeping freed pages" >&2
    echo "LD_PRELOAD=$jemalloc${LD_PRELOAD:+:$LD_PRELOAD} MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1"
  else
    echo "$0: CPU memory allocator: glibc without trimming (libjemalloc2 would need less memory)" >&2
    echo "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776"
  fi
}
for opt in num_gpus nproc_per_node nnodes node_rank; do
  [[ "${!opt}" =~ ^[0-9]+$ ]] || die "--${opt//_/-} takes a whole number, not '${!opt}'."
done
[ "$nnodes" -ge 1 ] || die "--nnodes must be 1 or more."
[ "$node_rank" -lt "$nnodes" ] ||
  die "--node-rank $node_rank is not a node of --nnodes $nnodes (numbered 0 to $((nnodes - 1)))."
[ "$nproc_per_node" -ge 1 ] || die "--nproc-per-node must be 1 or more."
[[ "$cpu_malloc" =~ ^(auto|system)$ ]] || die "--cpu-malloc takes auto or system, not '$cpu_malloc'."

# Processes per node: one per GPU, or --nproc-per-node CPU processes.
launcher_opts=()
if [ "$num_gpus" -gt 0 ]; then
  [ "$nproc_per_node" -eq 1 ] || [ "$nproc_per_node" -eq "$num_gpus" ] ||
    die "--nproc-per-node is for CPU runs; with --num-gpus $num_gpus there is one process per GPU."
  procs=$num_gpus
  launcher_opts=(--gpu "$num_gpus")
  job_env=()
else
  procs=$nproc_per_node
  # --num-gpus 0 means the CPU even on a machine with GPUs (training.device: auto follows).
  job_env=(CUDA_VISIBLE_DEVICES=)
  if [ "$cpu_malloc" != system ]; then
    allocator=$(keep_freed_memory_env)
    read -ra allocator_env <<< "$allocator"
    job_env+=("${allocator_env[@]}")
  fi
fi

if [ $((procs * nnodes)) -gt 1 ]; then
  if [ "$master_port" = auto ]; then
    if [ "$nnodes" -eq 1 ]; then
      master_port=$(python -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
    else
      master_port=29500
    fi
  fi
  [[ "$master_port" =~ ^[0-9]+$ ]] || die "--master-port takes a port number or auto, not '$master_port'."
  if [ "$nnodes" -gt 1 ] && [[ "$master_addr" == 127.* || "$master_addr" == localhost ]]; then
    die "with --nnodes $nnodes, --master-addr must be node 0's address as the other nodes reach it, not $master_addr."
  fi
  # python -m torch.distributed.run is torchrun, found wherever this environment's python is.
  program=(python -m torch.distributed.run --nnodes "$nnodes" --nproc-per-node "$procs"
           --node-rank "$node_rank" --master-addr "$master_addr" --master-port "$master_port"
           -m pytorch_modules.bin.train)
else
  program=(python -m pytorch_modules.bin.train)
fi

# Trained from shards (config data.features), the data dir needs no feats.scp: the shards and
# their indexes hold the audio and the frame counts.
overrides=()
for o in "${set[@]}"; do overrides+=(--set "$o"); done
features=$(python -m pytorch_modules.bin.config_value "${overrides[@]}" "$config" data.features) || exit 1
validate_opts=(--no-wav)
[ "$features" != shards ] || validate_opts=(--no-wav --no-feats)
utils/validate_data_dir.sh "${validate_opts[@]}" "$data"
lock_dir "$dir"
mkdir -p "$dir/log"
log=$dir/log/train.log
if [ "$nnodes" -gt 1 ]; then
  # Every node writes its own log: the nodes may share the exp dir.
  log=$dir/log/train.node$node_rank.log
fi
echo "$0: training $dir on $data with $config ($((procs * nnodes)) process(es)); log: $log"
if $show_log; then
  : > "$log"
  tail -n +1 -F "$log" 2>/dev/null &
  tail_pid=$!
  trap 'kill $tail_pid 2>/dev/null || true' EXIT
fi
$cmd "${launcher_opts[@]}" "$log" "${job_env[@]}" "${program[@]}" --config "$config" "${overrides[@]}" "$data" "$dir"
