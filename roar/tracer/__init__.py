"""The eBPF tracer: libbpf binding, loader, launcher, collector."""
