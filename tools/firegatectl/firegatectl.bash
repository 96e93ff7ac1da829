# bash completion for firegatectl: commands, their options, and device and bus names asked of the
# running firegated (nothing is completed from it when it does not answer).

_firegatectl_names() {  # devices | buses
  local socket_args=()
  [[ -n "${_fgctl_socket:-}" ]] && socket_args=(--socket "$_fgctl_socket")
  if [[ $1 == devices ]]; then
    firegatectl "${socket_args[@]}" --json devices 2>/dev/null | sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p'
  else
    firegatectl "${socket_args[@]}" --json status 2>/dev/null | sed -n '/"buses"/,/\]/s/^ *"name": "\(.*\)",\{0,1\}$/\1/p'
  fi
}

_firegatectl() {
  # Plain COMP_WORDS: works with or without the bash-completion package.
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} cword=$COMP_CWORD
  local words=("${COMP_WORDS[@]}")
  local commands="status devices device alarms ack shield unshield test-mode test-alarm tail read write scan export metrics config gb26875"
  local global="--socket --json --help --version"
  local command="" i _fgctl_socket=""
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      -s | --socket) _fgctl_socket=${words[i + 1]}; ((i++)) ;;
      -*) ;;
      *) command=${words[i]}; break ;;
    esac
  done
  case $prev in
    -s | --socket | -o | --output | --direct | --profiles) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -d | --device) COMPREPLY=($(compgen -W "$(_firegatectl_names devices)" -- "$cur")); return ;;
    -b | --bus) COMPREPLY=($(compgen -W "$(_firegatectl_names buses)" -- "$cur")); return ;;
    -t | --table) COMPREPLY=($(compgen -W "holding input coil discrete" -- "$cur")); return ;;
    --verdict) COMPREPLY=($(compgen -W "real false test" -- "$cur")); return ;;
    --parity) COMPREPLY=($(compgen -W "N E O" -- "$cur")); return ;;
  esac
  local opts=""
  case $command in
    "") COMPREPLY=($(compgen -W "$commands $global" -- "$cur")); return ;;
    device | unshield)
      [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$(_firegatectl_names devices)" -- "$cur")); return; }
      opts="--by" ;;
    shield)
      [[ $cur != -* && $prev == shield ]] && { COMPREPLY=($(compgen -W "$(_firegatectl_names devices)" -- "$cur")); return; }
      opts="--minutes --reason --by" ;;
    test-mode)
      if [[ $cur != -* ]]; then
        [[ $prev == test-mode ]] && COMPREPLY=($(compgen -W "$(_firegatectl_names devices)" -- "$cur")) \
          || COMPREPLY=($(compgen -W "on off" -- "$cur"))
        return
      fi
      opts="--minutes --by" ;;
    alarms) opts="--history --device --limit" ;;
    ack)
      [[ $cur != -* && $prev != ack && $prev != --by ]] && { COMPREPLY=($(compgen -W "real false test" -- "$cur")); return; }
      opts="--verdict --by" ;;
    test-alarm) opts="--wait --by" ;;
    tail) opts="--device --no-readings --no-events" ;;
    read) opts="--bus --direct --unit --table --address --count --baud --parity --stop-bits --timeout-ms --force" ;;
    write) opts="--bus --direct --unit --table --address --baud --parity --stop-bits --timeout-ms --force" ;;
    scan) opts="--bus --direct --from --to --profiles --baud --parity --stop-bits --timeout-ms --force" ;;
    export) opts="--from --to --device --output" ;;
    gb26875)
      [[ $prev == gb26875 ]] && { COMPREPLY=($(compgen -W "decode answer" -- "$cur")); return; }
      [[ " ${words[*]} " == *" answer "* ]] && opts="--operator"
      ;;
    config)
      [[ $prev == config ]] && { COMPREPLY=($(compgen -W "check show history rollback" -- "$cur")); return; }
      [[ $prev == check ]] && { COMPREPLY=($(compgen -f -- "$cur")); return; }
      ;;
  esac
  COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
}
complete -F _firegatectl firegatectl
