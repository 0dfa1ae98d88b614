"""What the benchmarks in scripts/ share: running a command and timing it (proc),
rounds, medians, same-run ratios and the noise band (stats), and plain-text
tables (report). Standard library only, and no roar import: a benchmark runs
roar as a command, so it measures the roar it is pointed at."""
