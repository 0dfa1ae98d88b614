"""scripts/bench_tracer.py's parts: the workloads, the tracers compared (none,
roar, strace, the floor of empty programs), the BPF checks and the attach
monitor, the bench that pairs them, and its report."""
