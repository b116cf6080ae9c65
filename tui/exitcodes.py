"""Exit codes, the same for every command: how the release ended."""

PROMOTED = 0
ROLLED_BACK = 1  # rolled back or aborted
USAGE = 2  # usage, spec or trace error
UNREACHABLE = 3  # platform or metrics unreachable
