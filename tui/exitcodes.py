"""Exit codes, the same for every command: how the release ended."""

PROMOTED = 0
ROLLED_BACK = 1  # rolled back or aborted
USAGE = 2  # usage, spec or trace error
UNREACHABLE = 3  # platform or metrics unreachable
# Another session drives this release (it holds the lease), or this session lost the lease while
# driving. Not an outcome of the release and not a fault: a pipeline can wait and retry, or attach.
LEASE_HELD = 4
