/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Event layouts shared by the kernel side (roar.bpf.c) and the Python decoder
 * (roar/tracer/events.py). tests/unit/test_event_layout.py compiles this header
 * with the host compiler and checks every size and offset against the decoder.
 *
 * Every event is: struct ev_header, the type's fixed part, then its strings
 * back to back, each NUL-terminated; the fixed part gives each string's length
 * (NUL included), so file names may hold any byte but NUL.
 */
#ifndef ROAR_EVENTS_H
#define ROAR_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define ROAR_ABI_VERSION 1

#define ROAR_PATH_MAX 4096      /* one raw syscall argument (the kernel's PATH_MAX) */
#define ROAR_ARGV_MAX 4096      /* argv blob of one exec */
#define ROAR_STR_CAP 8192       /* all strings of one event together */
#define ROAR_MAX_DEPTH 2048     /* path components walked in the kernel (a power of two) */

/* A path the kernel could not walk in full (deeper than ROAR_MAX_DEPTH, or longer
 * than the string space) is sent with this byte in place of its leading '/':
 * what follows is a fragment, never to be taken for the file's path. */
#define ROAR_PATH_CUT '?'

enum roar_event_type {
	ROAR_EV_FORK = 1,     /* a tracked process made a new process (not a thread) */
	ROAR_EV_EXEC = 2,     /* an exec succeeded (ret == 0) or failed (ret < 0) */
	ROAR_EV_FILE = 3,     /* first access of one kind to one inode by one process */
	ROAR_EV_PATHOP = 4,   /* a rename, link, unlink, rmdir or truncate by name that succeeded */
	ROAR_EV_EXIT = 5,     /* the whole thread group is gone */
	ROAR_EV_ENV = 40,     /* first getenv() of one name by one process (libc uprobe) */
};

/* ROAR_EV_FILE access bits. One event per (process, inode, bit): the kernel keeps
 * what it already sent, so 200k reads of one file are one event. */
enum roar_access {
	ROAR_ACC_READ = 1,        /* read, pread, readv, sendfile/splice/copy source */
	ROAR_ACC_WRITE = 2,       /* write family, sendfile/splice/copy target, fallocate */
	ROAR_ACC_CREATE = 4,      /* open created the file (FMODE_CREATED) */
	ROAR_ACC_TRUNC = 8,       /* open with O_TRUNC for writing, or ftruncate */
	ROAR_ACC_MMAP_READ = 16,  /* mapped readable (also how ld.so loads libraries) */
	ROAR_ACC_MMAP_WRITE = 32, /* mapped shared and writable */
};

enum roar_pathop {
	ROAR_OP_RENAME = 1,
	ROAR_OP_LINK = 2,
	ROAR_OP_UNLINK = 3,
	ROAR_OP_TRUNCATE = 4,
	ROAR_OP_RMDIR = 5,
};

/* Kernel counters, one per CPU, summed by the collector after the run. */
enum roar_stat {
	ROAR_STAT_DROPPED = 0,        /* ring buffer full: event lost */
	ROAR_STAT_PATH_TRUNCATED = 1, /* a path deeper than ROAR_MAX_DEPTH or longer than the caps */
	ROAR_STAT_SEEN_FAILED = 2,    /* the dedup map took no entry: that access may be reported again */
	ROAR_STAT_UNTRACKED = 3,      /* `tracked` was full at a fork: the child's subtree is not traced */
	ROAR_STAT_PIN_FAILED = 4,     /* a first read could not be held for the pinner: hashed by path */
	ROAR_STAT_COUNT = 5,
};

/* ev_fork flags */
enum roar_fork_flags {
	ROAR_FORK_UNTRACKED = 1,      /* the child could not be tracked (ROAR_STAT_UNTRACKED) */
};

struct ev_header {
	__u16 type;
	__u16 size;      /* whole event, strings included */
	__u32 tgid;
	__u32 tid;
	__u32 _pad;
	__u64 ts_ns;     /* bpf_ktime_get_ns: monotonic */
};

struct ev_fork {
	struct ev_header h;
	__u32 parent_tgid;
	__u32 child_tgid;
	__u32 flags;     /* ROAR_FORK_* */
	__u32 _pad;
};

/* strings: filename (as passed to exec), cwd, exe (canonical; empty on failure),
 * then argv: argc NUL-terminated arguments in argv_len bytes */
struct ev_exec {
	struct ev_header h;
	__s32 ret;
	__u32 argc;
	__u16 filename_len;
	__u16 cwd_len;
	__u16 exe_len;
	__u16 argv_len;
	__u32 argv_truncated;
	__u32 flags;          /* ROAR_EXEC_* */
};

/* The exec gave the process privileges its parent did not have (set-user-ID,
 * set-group-ID or file capabilities: the kernel's AT_SECURE). It is not traced
 * further: what it opens is not the invoking user's to see. */
#define ROAR_EXEC_PRIVILEGED 1

/* strings: path (canonical, resolved from the open file in the kernel) */
struct ev_file {
	struct ev_header h;
	__u32 access;
	__u32 mode;        /* inode mode bits */
	__u64 dev;
	__u64 ino;
	__u64 size;        /* at the moment of the access */
	__s64 mtime_sec;
	__u32 mtime_nsec;
	__u16 path_len;
	__u16 _pad;
	__u32 generation;  /* a reused inode number is another file */
	__u32 ctime_nsec;  /* ctime, which no user can set: with mtime, the file's state at the access */
	__s64 ctime_sec;
};

/* strings: name1, dir1, name2, dir2. nameN is the syscall argument as passed;
 * dirN the canonical directory it is relative to (dirfd or cwd), empty when
 * nameN is absolute. name2/dir2 are empty for one-name operations. */
struct ev_pathop {
	struct ev_header h;
	__u32 op;
	__s32 ret;
	__u32 flags;
	__u16 name1_len;
	__u16 dir1_len;
	__u16 name2_len;
	__u16 dir2_len;
	__u32 _pad;
};

struct ev_exit {
	struct ev_header h;
	__s32 wait_status; /* as waitpid() would report: code << 8, or the signal */
	__u32 _pad;
};

/* strings: name, then the value getenv returned (empty when it returned NULL).
 * One event per (process, name): a name is reported with the first value read. */
#define ROAR_ENV_NAME_MAX 256     /* a longer name is cut (ROAR_ENV_NAME_CUT) */
#define ROAR_ENV_VALUE_MAX 4096   /* a longer value is cut (ROAR_ENV_VALUE_CUT) */

enum roar_env_flags {
	ROAR_ENV_SET = 1,         /* getenv returned a value: the variable was set */
	ROAR_ENV_NAME_CUT = 2,
	ROAR_ENV_VALUE_CUT = 4,
};

struct ev_env {
	struct ev_header h;
	__u32 flags;      /* ROAR_ENV_* */
	__u16 name_len;
	__u16 value_len;
};

_Static_assert(sizeof(struct ev_header) == 24, "ev_header layout");
_Static_assert(sizeof(struct ev_fork) == 40, "ev_fork layout");
_Static_assert(sizeof(struct ev_exec) == 48, "ev_exec layout");
_Static_assert(sizeof(struct ev_file) == 88, "ev_file layout");
_Static_assert(sizeof(struct ev_pathop) == 48, "ev_pathop layout");
_Static_assert(sizeof(struct ev_exit) == 32, "ev_exit layout");
_Static_assert(sizeof(struct ev_env) == 32, "ev_env layout");

#endif /* ROAR_EVENTS_H */
