"""loom's benchmarks: the same work in loom and in PyTorch, timed in one run."""
