#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by scripts after their defaults are set:
# "--foo_bar value" sets foo_bar=value, but only for variables that already exist
# (an unknown option is an error that names it). "--help" prints $help_message.
# A script that hands the rest of its options on to another script sets
# pass_unknown_options=true first: unknown options and their values are then kept, in
# order, in the array unknown_options instead of being an error.
unknown_options=()
while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h) echo "${help_message:-no help}"; exit 0 ;;
    --*=*) echo "$0: use '--name value', not '$1'" >&2; exit 1 ;;
    --*)
      name=${1#--}; name=${name//-/_}
      if [ -z "${!name+set}" ] || [ "${name}" = unknown_options ]; then
        if [ "${pass_unknown_options:-false}" != true ]; then
          echo "$0: unknown option $1 (see $0 --help)" >&2; exit 1
        fi
        [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
        unknown_options+=("$1" "$2"); shift 2; continue
      fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      printf -v "$name" '%s' "$2"
      shift 2 ;;
    *) break ;;
  esac
done
