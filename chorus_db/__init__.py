"""The lead-capture backend's Python side: build, cluster, stack, tests' support; tasks/ drives it."""
