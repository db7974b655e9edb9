# shellcheck shell=bash
# Kaldi-style command-line options for the recipe's bash scripts.  Source it, don't run it.
#
# usage, inside a script:
#   nj=4                 # every option is a variable with a default, set BEFORE sourcing
#   use_gpu=false        # a default of true/false makes the option boolean
#   help_message="Usage: $0 [options] <data-dir> <exp-dir>
#     --nj <n>            number of parallel jobs (default: $nj)
#     --use-gpu <bool>    true|false (default: $use_gpu)"
#   . utils/parse_options.sh || exit 1
#   [ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
#
# Rules (Kaldi's parse_options.sh, plus the --name=value form):
#   --foo-bar VALUE or --foo-bar=VALUE  sets the variable foo_bar (dashes become underscores),
#       but only when the script already defines foo_bar: anything else is a typo, so it is
#       reported with the help message and the script exits 1.
#   A variable whose current value is true or false only takes true or false.
#   An array variable (declared `foo=()`) is a repeatable option: each --foo VALUE appends.
#   --help or -h prints $help_message on stdout and exits 0.
#   Parsing stops at the first argument that is not an option, or after `--`; the remaining
#   arguments are left in "$@" (this file is sourced, so `shift` acts on the script's arguments).
#
# The helper variables are prefixed __po_ so they cannot clash with a script's own variables,
# and are unset at the end.

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      printf '%s\n' "${help_message:-No help message is defined in $0.}"
      exit 0 ;;
    --)
      shift
      break ;;
    --?*) ;;              # an option: handled below
    *) break ;;           # first positional argument (or a lone "-", or ""): options are over
  esac

  __po_option=${1%%=*}                # "--foo-bar" from "--foo-bar" or "--foo-bar=v"
  __po_name=${__po_option#--}
  __po_name=${__po_name//-/_}
  if [[ "$1" == *=* ]]; then
    __po_value=${1#*=}
    shift
  else
    if [ $# -lt 2 ]; then
      echo "$0: option $__po_option needs a value, e.g. $__po_option VALUE" >&2
      exit 1
    fi
    __po_value=$2
    shift 2
  fi

  # Only variables the script defines are options; the name check comes first because
  # declare -p of a name that is not an identifier is an error of another kind.
  if ! [[ "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || ! declare -p "$__po_name" >/dev/null 2>&1; then
    echo "$0: invalid option $__po_option" >&2
    [ -n "${help_message:-}" ] && printf '%s\n' "$help_message" >&2
    exit 1
  fi

  # A repeatable option: the value is appended (a nameref, so no eval).
  if [[ "$(declare -p "$__po_name")" == "declare -a"* ]]; then
    declare -n __po_list=$__po_name
    __po_list+=("$__po_value")
    unset -n __po_list
    continue
  fi

  # Booleans stay booleans: a typo like --use-gpu ture would otherwise only fail much later,
  # when the script runs `if $use_gpu; then`.
  if [[ "${!__po_name}" == true || "${!__po_name}" == false ]] &&
     [[ "$__po_value" != true && "$__po_value" != false ]]; then
    echo "$0: invalid value '$__po_value' for $__po_option: expected true or false" >&2
    exit 1
  fi

  # printf -v assigns without eval, so values with quotes or spaces are taken literally.
  printf -v "$__po_name" '%s' "$__po_value"
done

unset __po_option __po_name __po_value
true   # the status of `. parse_options.sh` must be 0 for callers running under set -e
