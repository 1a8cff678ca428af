#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by scripts after their defaults are set:
# "--foo_bar value" sets foo_bar=value, but only for variables that already exist
# (an unknown option is an error that names it). "--help" prints $help_message.
while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h) echo "${help_message:-no help}"; exit 0 ;;
    --*=*) echo "$0: use '--name value', not '$1'" >&2; exit 1 ;;
    --*)
      name=${1#--}; name=${name//-/_}
      if [ -z "${!name+set}" ]; then
        echo "$0: unknown option $1 (see $0 --help)" >&2; exit 1
      fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      printf -v "$name" '%s' "$2"
      shift 2 ;;
    *) break ;;
  esac
done
