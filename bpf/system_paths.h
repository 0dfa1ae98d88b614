/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The path prefixes that are not lineage (docs/lineage-rules.md), the one
 * table for both sides: system_path() in roar.bpf.c is built from it, and
 * roar/record/filesets.py's PSEUDO_PREFIXES and SYSTEM_PREFIXES must equal it
 * (tests/unit/test_system_paths.py parses the X("...") entries below).
 * Every prefix ends in '/': "/lib" would also match "/library/...".
 */
#ifndef ROAR_SYSTEM_PATHS_H
#define ROAR_SYSTEM_PATHS_H

/* pseudo filesystems */
#define ROAR_PSEUDO_PREFIXES(X) \
	X("/proc/") X("/sys/") X("/dev/")

/* read-only system locations */
#define ROAR_SYSTEM_PREFIXES(X) \
	X("/usr/") X("/lib/") X("/lib32/") X("/lib64/") X("/libx32/") X("/bin/") X("/sbin/") X("/etc/")

/* p starts with the n bytes of prefix; unrolled, the prefix's bytes become immediates */
static inline __attribute__((always_inline)) int roar_has_prefix(const char *p, const char *prefix, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i] != prefix[i])
			return 0;
	return 1;
}

/* a path outside lineage: not absolute, or under one of the prefixes above */
static inline __attribute__((always_inline)) int roar_system_path(const char *p)
{
	if (p[0] != '/')
		return 1;
#define ROAR_MATCH(prefix) if (roar_has_prefix(p, prefix, sizeof(prefix) - 1)) return 1;
	ROAR_PSEUDO_PREFIXES(ROAR_MATCH)
	ROAR_SYSTEM_PREFIXES(ROAR_MATCH)
#undef ROAR_MATCH
	return 0;
}

#endif
