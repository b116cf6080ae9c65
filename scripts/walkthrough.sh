#!/usr/bin/env bash
# Replay the operator's walk-through of issue 15 in tmux, keys in and screens captured, so the
# next person can see the whole session in one command:
#
#     scripts/walkthrough.sh [OUT_DIR] [COLSxROWS ...]      (default: /tmp/releasedeck-walkthrough 160x48 80x24)
#
# For each size it starts `releasedeck demo` in a detached tmux session, waits for what each
# step should show (bounded polls, never fixed sleeps alone), presses the keys a new release
# engineer would, and saves every screen as text (NN-name.txt) and with colours (NN-name.ansi;
# view with `less -R`). The last capture is the summary line the demo prints on quit.
# Needs tmux and the package installed in .venv (scripts/test does both).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/releasedeck-walkthrough}"
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(160x48 80x24)
bin="$PWD/.venv/bin/releasedeck"
[ -x "$bin" ] || { echo "walkthrough: $bin missing; run scripts/test once" >&2; exit 2; }
command -v tmux >/dev/null || { echo "walkthrough: tmux is not installed" >&2; exit 2; }

session="releasedeck-walk-$$"
cleanup() { tmux kill-session -t "$session" 2>/dev/null || true; }
trap cleanup EXIT

n=0
shot() {  # shot NAME: save the pane as text and as ANSI
  n=$((n + 1))
  local name; name=$(printf '%s/%s/%02d-%s' "$out" "$size" "$n" "$1")
  tmux capture-pane -t "$session" -p > "$name.txt"
  tmux capture-pane -t "$session" -p -e > "$name.ansi"
  echo "  $name.txt"
}
wait_for() {  # wait_for TEXT [SECONDS]: poll the pane until TEXT shows (bounded)
  local text="$1" limit="${2:-60}" i=0
  while [ "$i" -lt $((limit * 5)) ]; do
    tmux capture-pane -t "$session" -p 2>/dev/null | grep -qF -- "$text" && return 0
    sleep 0.2; i=$((i + 1))
  done
  echo "walkthrough: '$text' did not show within ${limit}s" >&2
  tmux capture-pane -t "$session" -p >&2 || true
  return 1
}
keys() { tmux send-keys -t "$session" "$@"; sleep 0.5; }

for size in "${sizes[@]}"; do
  cols="${size%x*}"; rows="${size#*x}"
  n=0
  mkdir -p "$out/$size"
  echo "$size:"
  # Textual draws on stderr: it must stay the pane's, or the pane shows nothing. The summary
  # line printed on quit lands in the pane too, under the restored terminal.
  tmux new-session -d -s "$session" -x "$cols" -y "$rows" \
    "$bin demo; echo; echo '[demo exited]'; sleep 600"
  wait_for "waiting for first metrics" 30 && shot start || shot start
  wait_for "step 2/4" 90; shot step-2
  keys '?'; wait_for "keys (Esc closes)"; shot help; keys Escape
  keys i; wait_for "this run"; shot run-info; keys Escape
  keys e; wait_for "pick, Esc closes"; shot events; keys Escape
  keys f; wait_for "ROLLED BACK" 60; shot rolled-back
  wait_for "no traffic since" 30; sleep 3; shot cause-stays-after-scale-down
  keys r; shot rollback-refused-says-why
  keys F; wait_for "fault cleared" 20; shot fault-cleared
  keys R; wait_for "Retry the release?"; shot retry-asks; keys y
  wait_for "PROGRESSING" 30; shot retried
  keys Space; wait_for "PAUSED" 20; shot paused
  keys q; wait_for "Quit mid-rollout?"; shot quit-asks; keys y
  wait_for "[demo exited]" 30; shot summary-on-quit
  cleanup
done
echo "screens in $out"
