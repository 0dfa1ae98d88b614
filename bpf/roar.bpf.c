// SPDX-License-Identifier: GPL-2.0
/*
 * roar's kernel side: watch one process tree and report, once each, the facts
 * lineage needs (processes made, programs exec'd, files first read or changed,
 * names renamed/linked/unlinked, exits).
 *
 * Tracepoints only: tp_btf/sched_process_{fork,exec,exit} and one raw
 * tp_btf/sys_exit program that dispatches on the syscall number. Every syscall
 * we care about has its arguments still in pt_regs at exit, so no sys_enter
 * program is needed: untracked processes pay one switch and, for the handled
 * syscalls, one hash lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "events.h"
#include "syscalls.h"

char LICENSE[] SEC("license") = "GPL";

#define S_IFMT 00170000
#define S_IFREG 0100000
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_PATH 010000000
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define MAP_TYPE 0x0f
#define MAP_SHARED 0x01
#define MAP_SHARED_VALIDATE 0x03
#define MAP_ANONYMOUS 0x20
#define PROT_READ 0x1
#define PROT_WRITE 0x2
#define PROT_EXEC 0x4
#define FMODE_CREATED 0x100000
#define NAME_MAX 255
#define READS (ROAR_ACC_READ | ROAR_ACC_MMAP_READ)

/* Wake the reader only once this much is pending; it also polls every 100 ms.
 * Waking it per event made traced workloads 2.5x slower in the probe. */
const volatile __u64 wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* tgid */
	__type(value, __u8);
} tracked SEC(".maps");

struct seen_key {
	__u64 start;        /* the process's start time: a reused pid is a new process */
	__u32 tgid;
	__u32 dev;
	__u64 ino;
	__u32 generation;   /* a reused inode number is a new file */
	__u32 _pad;
};

/* What was already reported per (process, inode), set only once the event is
 * in the ring buffer. LRU: an eviction costs a repeated event at worst, never a
 * lost one; a process's entries are not cleared at its exit (a map cannot be
 * searched by process), they age out, and a new process of the same pid has
 * another start time. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);   /* preallocated at load: bigger costs roar run's start-up */
	__type(key, struct seen_key);
	__type(value, __u32);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);  /* user space may resize before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ROAR_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Hash as read (docs/tracer.md, "Input hashes"): at the first read or map of
 * each user file in the job, the reading thread is held until roar's pinner
 * (roar/tracer/pinner.py) has hashed the same open file. The pinner has seized
 * the job's threads with ptrace, so the signal that holds the thread stops it
 * in a signal-delivery-stop the pinner suppresses, which nobody else sees. */
#define SIGURG 23
#define PT_PTRACED 0x1

struct pin_req {
	__u32 tgid;
	__s32 fd;        /* the reader's descriptor, taken with pidfd_getfd */
	__u64 dev;
	__u64 ino;
	__u32 generation;
	__u32 _pad;
};

struct pin_key {
	__u64 ino;
	__u32 dev;
	__u32 generation;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);   /* the pinner's tgid; 0: no pinner, hold nobody */
} pinner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);     /* the held thread */
	__type(value, struct pin_req);
} pin_reqs SEC(".maps");

/* the files pinned in this job: each is held for once, by its first reader */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pin_key);
	__type(value, __u8);
} pinned SEC(".maps");

/* The inode each thread last reported on, one for reads and one for writes, and
 * the accesses its process reported for it: a read or write loop on the same file
 * (dd, a log writer) then costs a few loads, without the `seen` lookup. Thread
 * storage lives and dies with the thread, so a reused pid starts empty; the
 * inode is compared by address, number and generation, so a freed and reused
 * inode is a miss. */
struct last_inode {
	__u64 inode;
	__u64 ino;
	__u32 generation;
	__u32 bits;
};

struct last_inodes {
	struct last_inode slot[2];   /* 0: reads, 1: writes and other changes */
	__u32 tracked;               /* the thread's process is in `tracked` (a cache of it) */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct last_inodes);
} last SEC(".maps");

/* Events are assembled here (too big for the 512-byte stack), then copied
 * into the ring buffer with their exact size. */
#define FIXED_MAX 128
#define STR_END (FIXED_MAX + ROAR_STR_CAP)
struct scratch {
	char buf[STR_END + ROAR_PATH_MAX];
	const unsigned char *names[ROAR_MAX_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* inode timestamps moved around across kernel versions */
struct inode___v66 { struct timespec64 __i_mtime; struct timespec64 __i_ctime; }
	__attribute__((preserve_access_index));
struct inode___old { struct timespec64 i_mtime; struct timespec64 i_ctime; } __attribute__((preserve_access_index));

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);
	if (v)
		*v += 1;
}

static __always_inline bool is_tracked(__u32 tgid)
{
	return bpf_map_lookup_elem(&tracked, &tgid) != NULL;
}

/* Whether the current thread's process is tracked. The answer is kept in the thread's
 * storage once it is yes, so a tracked thread's syscalls skip the hash lookup. A thread
 * that no BPF program keeps storage for (most of the machine) is seen to have none with a
 * plain load, without the storage lookup, and pays the hash lookup alone. A process leaves
 * `tracked` at its exit (its threads and their storage go with it) or at a privileged exec,
 * where on_exec clears the exec'ing thread's flag (the exec killed the other threads).
 * Global, so the verifier checks it once on its own: inlined into on_sys_exit it took that
 * program's verification from ~28 to ~100 ms, paid at every job's start. */
__noinline int tracked_now(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct last_inodes *l = NULL;

	if (!bpf_core_field_exists(t->bpf_storage) || t->bpf_storage)
		l = bpf_task_storage_get(&last, t, 0, 0);
	if (l && l->tracked)
		return 1;
	if (!is_tracked(t->tgid))
		return 0;
	l = bpf_task_storage_get(&last, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (l)
		l->tracked = 1;
	return 1;
}

static __always_inline struct scratch *scratch_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_map, &zero);
}

static __always_inline void header(struct scratch *s, __u16 type, __u32 tgid, __u32 tid)
{
	struct ev_header *h = (void *)s->buf;
	h->type = type;
	h->size = 0;
	h->tgid = tgid;
	h->tid = tid;
	h->_pad = 0;
	h->ts_ns = bpf_ktime_get_ns();
}

/* 0 when the event is in the ring buffer */
static __always_inline long submit_event(struct scratch *s, __u32 size, bool urgent)
{
	struct ev_header *h = (void *)s->buf;
	__u64 flags = 0;

	if (size > sizeof(s->buf))
		size = sizeof(s->buf);
	h->size = size;
	if (urgent)
		flags = BPF_RB_FORCE_WAKEUP;
	else if (wakeup_bytes)
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
			BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	long err = bpf_ringbuf_output(&events, s->buf, size, flags);
	if (err)
		count(ROAR_STAT_DROPPED);
	return err;
}

static __always_inline void submit(struct scratch *s, __u32 size)
{
	submit_event(s, size, false);
}

static __always_inline __u32 put_empty(struct scratch *s, __u32 off)
{
	if (off >= STR_END)
		return off;
	s->buf[off] = 0;
	return off + 1;
}

static __always_inline __u32 put_user_str(struct scratch *s, __u32 off, const char *u)
{
	if (off >= STR_END) {
		count(ROAR_STAT_PATH_TRUNCATED);
		return off;
	}
	long n = bpf_probe_read_user_str(&s->buf[off], ROAR_PATH_MAX, u);
	if (n <= 0)
		return put_empty(s, off);
	return off + n;
}

static __always_inline __u32 put_kernel_str(struct scratch *s, __u32 off, const char *k)
{
	if (off >= STR_END) {
		count(ROAR_STAT_PATH_TRUNCATED);
		return off;
	}
	long n = bpf_probe_read_kernel_str(&s->buf[off], ROAR_PATH_MAX, k);
	if (n <= 0)
		return put_empty(s, off);
	return off + n;
}

struct path_walk {
	struct dentry *d;
	struct mount *m;
	__u32 n;     /* names collected, leaf first */
	__u32 off;   /* write position in the scratch buffer */
	__u32 done;  /* the walk reached the root */
	__u32 cut;   /* a name did not fit */
};

/* one step up: the parent dentry, or across a mount point; 1 stops the walk */
static long walk_up(__u32 i, void *ctx)
{
	struct path_walk *w = ctx;
	struct dentry *d = w->d;   /* locals: BPF_CORE_READ must not relocate w itself */
	struct mount *m = w->m;
	struct vfsmount *vm = (void *)m + bpf_core_field_offset(struct mount, mnt);
	struct scratch *s = scratch_get();

	if (!s)
		return 1;
	if (d == BPF_CORE_READ(vm, mnt_root)) {
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);
		if (parent == m) {
			w->done = 1;   /* the namespace's root */
			return 1;
		}
		w->d = BPF_CORE_READ(m, mnt_mountpoint);
		w->m = parent;
		return 0;
	}
	struct dentry *up = BPF_CORE_READ(d, d_parent);
	if (d == up) {
		w->done = 1;    /* root of a pseudo or detached tree */
		return 1;
	}
	__u32 n = w->n;
	if (n >= ROAR_MAX_DEPTH)
		return 1;       /* not done: put_path marks the path cut */
	s->names[n & (ROAR_MAX_DEPTH - 1)] = BPF_CORE_READ(d, d_name.name);
	w->n = n + 1;
	w->d = up;
	return 0;
}

/* write "/" + the i-th name from the top */
static long write_name(__u32 i, void *ctx)
{
	struct path_walk *w = ctx;
	struct scratch *s = scratch_get();
	__u32 off = w->off, k = w->n - 1 - i;

	if (!s || k >= ROAR_MAX_DEPTH)
		return 1;
	if (off >= STR_END - 1) {
		w->cut = 1;
		return 1;
	}
	s->buf[off] = '/';
	off++;
	long r = bpf_probe_read_kernel_str(&s->buf[off], NAME_MAX + 1, s->names[k & (ROAR_MAX_DEPTH - 1)]);
	if (r > 1)
		off += r - 1;
	w->off = off;
	return 0;
}

/*
 * Write the canonical absolute path of (dentry, vfsmount) at off: walk d_parent
 * up to the mount root, cross to the parent mount, stop at the namespace root.
 * Symlinks, "..", dirfds and chdir are already resolved in a dentry, so this is
 * the path the file really has, whatever name the program used. bpf_loop keeps
 * the verifier's work to one pass over each callback.
 */
__noinline __u32 put_path(struct scratch *s, __u32 off, __u64 dentry, __u64 vfsmount)
{
	struct path_walk w = {
		.d = (void *)dentry,
		.m = (void *)(vfsmount - bpf_core_field_offset(struct mount, mnt)),
		.off = off,
	};

	if (!s || !dentry || !vfsmount || off >= STR_END)
		return off;
	bpf_loop(2 * ROAR_MAX_DEPTH, walk_up, &w, 0);
	if (w.n == 0) {
		s->buf[off] = '/';
		w.off = off + 1;
	} else {
		bpf_loop(w.n, write_name, &w, 0);
	}
	/* the deepest names alone, or the top ones alone, are not the file's path */
	if (!w.done || w.cut) {
		count(ROAR_STAT_PATH_TRUNCATED);
		s->buf[off] = ROAR_PATH_CUT;
	}
	return put_empty(s, w.off);
}

static __always_inline __u32 put_file_path(struct scratch *s, __u32 off, struct file *f)
{
	return put_path(s, off, (__u64)BPF_CORE_READ(f, f_path.dentry), (__u64)BPF_CORE_READ(f, f_path.mnt));
}

static __always_inline __u32 put_cwd(struct scratch *s, __u32 off, struct task_struct *t)
{
	return put_path(s, off, (__u64)BPF_CORE_READ(t, fs, pwd.dentry), (__u64)BPF_CORE_READ(t, fs, pwd.mnt));
}

#include "system_paths.h"

/* read-only system trees and pseudo filesystems (the table in system_paths.h,
 * shared with roar/record/filesets.py): not lineage, no hurry */
static __always_inline bool system_path(const char *p)
{
	return roar_system_path(p);
}

/*
 * Two builds of this file (bpf/Makefile): roar.bpf.o for any kernel roar runs on (5.17+),
 * and roar-btf.bpf.o, built with ROAR_BTF, for kernels with the bpf_rdonly_cast kfunc (6.2+;
 * roar/tracer/objects.py picks one at load). The per-syscall path is the same; in the BTF
 * build the open file and its inode are read with plain loads instead of one
 * bpf_probe_read_kernel call per field.
 */
#ifdef ROAR_BTF
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
/* an untrusted BTF pointer: its fields are plain loads (a fault reads 0), no helper call */
#define AS_BTF(type, p) ((type *)bpf_rdonly_cast((void *)(p), bpf_core_type_id_kernel(type)))
#define HOT_READ(p, field) ((p)->field)
#else
#define HOT_READ(p, field) BPF_CORE_READ(p, field)
#endif

/* The open file of descriptor fd. t is the current task, a trusted BTF pointer:
 * t->files->fdt and its fields are plain loads. The fds[] slot is a pointer to a
 * pointer, a scalar for the verifier: read with a helper call, or in the BTF build
 * through a cast to struct kiocb, whose first member is a struct file pointer. */
static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct fdtable *fdt = t->files->fdt;
	struct file **fds = fdt->fd;
	unsigned int max = fdt->max_fds;
	struct file *f = NULL;

	if (fd < 0 || fd >= max)
		return NULL;
#ifdef ROAR_BTF
	if (bpf_core_field_offset(struct kiocb, ki_filp) == 0)
		return AS_BTF(struct kiocb, &fds[fd])->ki_filp;
#endif
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline void inode_mtime(struct inode *ino, struct ev_file *e)
{
	if (bpf_core_field_exists(struct inode, i_mtime_sec)) {
		e->mtime_sec = BPF_CORE_READ(ino, i_mtime_sec);
		e->mtime_nsec = BPF_CORE_READ(ino, i_mtime_nsec);
	} else if (bpf_core_field_exists(struct inode___v66, __i_mtime)) {
		struct inode___v66 *o = (void *)ino;
		e->mtime_sec = BPF_CORE_READ(o, __i_mtime.tv_sec);
		e->mtime_nsec = BPF_CORE_READ(o, __i_mtime.tv_nsec);
	} else {
		struct inode___old *o = (void *)ino;
		e->mtime_sec = BPF_CORE_READ(o, i_mtime.tv_sec);
		e->mtime_nsec = BPF_CORE_READ(o, i_mtime.tv_nsec);
	}
}

static __always_inline void inode_ctime(struct inode *ino, struct ev_file *e)
{
	if (bpf_core_field_exists(struct inode, i_ctime_sec)) {
		e->ctime_sec = BPF_CORE_READ(ino, i_ctime_sec);
		e->ctime_nsec = BPF_CORE_READ(ino, i_ctime_nsec);
	} else if (bpf_core_field_exists(struct inode___v66, __i_ctime)) {
		struct inode___v66 *o = (void *)ino;
		e->ctime_sec = BPF_CORE_READ(o, __i_ctime.tv_sec);
		e->ctime_nsec = BPF_CORE_READ(o, __i_ctime.tv_nsec);
	} else {
		struct inode___old *o = (void *)ino;
		e->ctime_sec = BPF_CORE_READ(o, i_ctime.tv_sec);
		e->ctime_nsec = BPF_CORE_READ(o, i_ctime.tv_nsec);
	}
}

/* Keep that this process reported `fresh` for this inode. Called once the event
 * is in the ring buffer (or needs none): a dropped event is sent again at the
 * next access. A racing thread may repeat the event: harmless. */
static __always_inline void mark_seen(struct seen_key *key, __u32 fresh)
{
	__u32 *bits = bpf_map_lookup_elem(&seen, key);
	if (!bits && bpf_map_update_elem(&seen, key, &fresh, BPF_NOEXIST) == 0)
		return;
	if (!bits)
		bits = bpf_map_lookup_elem(&seen, key);   /* another thread made it meanwhile */
	if (bits)
		__sync_fetch_and_or(bits, fresh);
	else
		count(ROAR_STAT_SEEN_FAILED);
}

/* What the process has reported for this inode, for the thread's next access */
static __always_inline void remember_last(struct last_inode *l, struct inode *ino, struct seen_key *key,
					  __u32 bits)
{
	if (!l)
		return;
	if (l->inode != (__u64)ino || l->ino != key->ino || l->generation != key->generation) {
		l->inode = (__u64)ino;
		l->ino = key->ino;
		l->generation = key->generation;
		l->bits = 0;
	}
	l->bits |= bits;
}

/* Hold the current thread for the pinner, once per file per job. Only a thread
 * the pinner traces is held: a signal to any other would be seen. */
static __always_inline void hold_for_pin(struct task_struct *t, struct seen_key *key, long fd)
{
	__u32 zero = 0, tid = (__u32)bpf_get_current_pid_tgid();
	__u32 *owner = bpf_map_lookup_elem(&pinner, &zero);
	__u8 one = 1;

	if (fd < 0 || !owner || !*owner || !(t->ptrace & PT_PTRACED) || t->parent->tgid != *owner)
		return;
	if (t->blocked.sig[0] & (1UL << (SIGURG - 1))) {
		/* the signal would wait until the thread unblocks it: too late, so the file stays
		 * unpinned (another reader may hold for it) and is hashed by path */
		count(ROAR_STAT_PIN_FAILED);
		return;
	}
	struct pin_key pk = { .ino = key->ino, .dev = key->dev, .generation = key->generation };
	if (bpf_map_update_elem(&pinned, &pk, &one, BPF_NOEXIST))
		return;   /* held for already (or the map is full: hashed by path, as before) */
	struct pin_req r = { .tgid = key->tgid, .fd = fd, .dev = key->dev, .ino = key->ino,
			     .generation = key->generation };
	if (bpf_map_update_elem(&pin_reqs, &tid, &r, BPF_ANY) == 0 && bpf_send_signal_thread(SIGURG) == 0)
		return;
	bpf_map_delete_elem(&pin_reqs, &tid);
	bpf_map_delete_elem(&pinned, &pk);
	count(ROAR_STAT_PIN_FAILED);
}

/* on_open's access: CREATE is added when the open created the file (f_mode) */
#define ACC_OPENED (1U << 31)

/* Report `access` on an open file unless this process already reported it
 * for this inode. Only regular files: pipes, sockets and devices carry no
 * lineage. Keyed by inode, so dup'd, inherited and redirected fds all land on
 * the same state. */
/* Global: on_sys_exit calls it from many places, the verifier checks it once. */
__noinline int fd_access(long fd, __u32 access)
{
	struct task_struct *t = bpf_get_current_task_btf();
	/* plain loads: the helper call for pid and tgid was 4% of a traced dd's profile */
	struct seen_key key = { .tgid = t->tgid };
	struct file *f = fd_file(t, fd);
	struct inode *ino;
	__u32 *bits, fresh;
	umode_t mode;

	if (!f)
		return 0;
	if (access & ACC_OPENED) {
		access &= ~ACC_OPENED;
		if (HOT_READ(f, f_mode) & FMODE_CREATED)
			access |= ROAR_ACC_CREATE;
		if (!access)
			return 0;
	}
	ino = HOT_READ(f, f_inode);
	key.ino = HOT_READ(ino, i_ino);
	key.generation = HOT_READ(ino, i_generation);
	struct last_inodes *lasts = bpf_task_storage_get(&last, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct last_inode *l = NULL;
	if (lasts) {
		l = &lasts->slot[(access & READS) ? 0 : 1];
		if (l->inode == (__u64)ino && l->ino == key.ino && l->generation == key.generation &&
		    !(access & ~l->bits))
			return 0;
	}
	mode = HOT_READ(ino, i_mode);
	if ((mode & S_IFMT) != S_IFREG) {
		remember_last(l, ino, &key, ~0U);   /* a pipe, socket or device: never reported */
		return 0;
	}
	key.start = t->group_leader->start_time;
#ifdef ROAR_BTF
	key.dev = ino->i_sb->s_dev;
#else
	key.dev = BPF_CORE_READ(ino, i_sb, s_dev);
#endif
	bits = bpf_map_lookup_elem(&seen, &key);
	fresh = bits ? access & ~*bits : access;
	if (!fresh) {
		remember_last(l, ino, &key, bits ? *bits : access);
		return 0;
	}

	/* A system file read by another process of the job was reported already:
	 * such reads only feed the package list, one fact per job is enough. */
	struct seen_key job_key = key;
	job_key.tgid = 0;
	job_key.start = 0;
	bits = !(fresh & ~READS) ? bpf_map_lookup_elem(&seen, &job_key) : NULL;
	if (bits && !(fresh & ~*bits)) {
		mark_seen(&key, fresh);
		remember_last(l, ino, &key, access);
		return 0;
	}
	__u32 job_bits = bits ? *bits : 0;

	struct scratch *s = scratch_get();
	if (!s)
		return 0;
	header(s, ROAR_EV_FILE, key.tgid, t->pid);
	struct ev_file *e = (void *)s->buf;
	e->access = fresh;
	e->mode = mode;
	e->dev = key.dev;
	e->ino = key.ino;
	e->size = BPF_CORE_READ(ino, i_size);
	inode_mtime(ino, e);
	inode_ctime(ino, e);
	e->generation = key.generation;
	e->_pad = 0;
	__u32 off = put_file_path(s, sizeof(*e), f);
	e->path_len = off - sizeof(*e);
	bool system = system_path(s->buf + sizeof(*e));
	if ((fresh & READS) && !system)
		hold_for_pin(t, &key, fd);
	/* The first read of a user file wakes the collector at once: it hashes
	 * the content before the job gets a chance to change it. */
	if (submit_event(s, off, (fresh & READS) && !system))
		return 0;   /* dropped (counted): the next access tries again */
	mark_seen(&key, fresh);
	remember_last(l, ino, &key, access);
	if (system && !(fresh & ~READS)) {
		__u32 all = fresh | job_bits;
		bpf_map_update_elem(&seen, &job_key, &all, BPF_ANY);
	}
	return 0;
}

/* name as passed, then the directory it is relative to (empty when absolute) */
static __always_inline __u32 put_name_at(struct scratch *s, __u32 off, long dfd, const char *name,
					  __u16 *name_len, __u16 *dir_len)
{
	__u32 start = off;
	bool absolute = false;

	off = put_user_str(s, off, name);
	if (start < STR_END)
		absolute = s->buf[start] == '/';
	*name_len = off - start;
	start = off;
	if (absolute || !name) {
		off = put_empty(s, off);
	} else if ((int)dfd == AT_FDCWD) {
		off = put_cwd(s, off, bpf_get_current_task_btf());
	} else {
		struct file *f = fd_file(bpf_get_current_task_btf(), (int)dfd);
		off = f ? put_file_path(s, off, f) : put_empty(s, off);
	}
	*dir_len = off - start;
	return off;
}

static __always_inline int pathop(__u32 op, long ret, __u32 flags, long dfd1, const char *n1,
				  long dfd2, const char *n2)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct scratch *s = scratch_get();
	if (!s)
		return 0;
	header(s, ROAR_EV_PATHOP, pid_tgid >> 32, (__u32)pid_tgid);
	struct ev_pathop *e = (void *)s->buf;
	e->op = op;
	e->ret = ret;
	e->flags = flags;
	e->_pad = 0;
	__u32 off = put_name_at(s, sizeof(*e), dfd1, n1, &e->name1_len, &e->dir1_len);
	if (n2) {
		off = put_name_at(s, off, dfd2, n2, &e->name2_len, &e->dir2_len);
	} else {
		off = put_empty(s, off);
		off = put_empty(s, off);
		e->name2_len = 1;
		e->dir2_len = 1;
	}
	submit(s, off);
	return 0;
}

__noinline int exec_failed(long ret, __u64 filename_addr)
{
	const char *filename = (const char *)filename_addr;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct scratch *s = scratch_get();
	if (!s)
		return 0;
	header(s, ROAR_EV_EXEC, pid_tgid >> 32, (__u32)pid_tgid);
	struct ev_exec *e = (void *)s->buf;
	e->ret = ret;
	e->argc = 0;
	e->argv_truncated = 0;
	e->flags = 0;
	__u32 off = sizeof(*e), start = off;
	off = put_user_str(s, off, filename);
	e->filename_len = off - start;
	start = off;
	off = put_cwd(s, off, bpf_get_current_task_btf());
	e->cwd_len = off - start;
	start = off;
	off = put_empty(s, off);
	e->exe_len = off - start;
	e->argv_len = 0;
	submit(s, off);
	return 0;
}

/* Argument i of the running syscall: x86_64 in rdi, rsi, rdx, r10, r8; ia32 in
 * ebx, ecx, edx, esi, edi, 32 bits wide (pointers too). regs is a BTF pointer:
 * plain loads, no helper call. */
static __always_inline long sys_arg(struct pt_regs *regs, int compat, int i)
{
	if (compat) {
		switch (i) {
		case 0: return (__u32)regs->bx;
		case 1: return (__u32)regs->cx;
		case 2: return (__u32)regs->dx;
		case 3: return (__u32)regs->si;
		default: return (__u32)regs->di;
		}
	}
	switch (i) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->r10;
	default: return regs->r8;
	}
}

/* rename, link, unlink, rmdir, truncate by name: a global function, so the
 * verifier checks it once rather than once per path through on_sys_exit */
__noinline int name_op(long nr, int compat)
{
	struct pt_regs *regs = (void *)bpf_task_pt_regs(bpf_get_current_task_btf());   /* a BTF pointer */
	long a0 = sys_arg(regs, compat, 0);
	long a1 = sys_arg(regs, compat, 1);
	long a2 = sys_arg(regs, compat, 2);
	long a3 = sys_arg(regs, compat, 3);
	long a4 = sys_arg(regs, compat, 4);

	long dfd1 = AT_FDCWD, dfd2 = AT_FDCWD, flags = 0;
	const char *n1 = (const char *)a0, *n2 = NULL;
	__u32 op;

	switch (nr) {   /* one pathop() call below: the verifier walks it once */
	case NR_rename:
		op = ROAR_OP_RENAME;
		n2 = (const char *)a1;
		break;
	case NR_renameat:
	case NR_renameat2:
	case NR_linkat:
		op = nr == NR_linkat ? ROAR_OP_LINK : ROAR_OP_RENAME;
		dfd1 = a0;
		n1 = (const char *)a1;
		dfd2 = a2;
		n2 = (const char *)a3;
		flags = nr == NR_renameat ? 0 : a4;
		break;
	case NR_link:
		op = ROAR_OP_LINK;
		n2 = (const char *)a1;
		break;
	case NR_unlink:
		op = ROAR_OP_UNLINK;
		break;
	case NR_unlinkat:
		op = a2 & AT_REMOVEDIR ? ROAR_OP_RMDIR : ROAR_OP_UNLINK;
		dfd1 = a0;
		n1 = (const char *)a1;
		flags = a2;
		break;
	case NR_rmdir:
		op = ROAR_OP_RMDIR;
		break;
	case NR_truncate:
		op = ROAR_OP_TRUNCATE;
		break;
	default:
		return 0;
	}
	return pathop(op, 0, flags, dfd1, n1, dfd2, n2);
}

/* An ia32 syscall number as the x86_64 one with the same arguments (but for
 * old_mmap's), or -1 when roar does not handle it */
static __always_inline long ia32_native(long nr)
{
	switch (nr) {
	case NR32_read: return NR_read;
	case NR32_write: return NR_write;
	case NR32_open: return NR_open;
	case NR32_creat: return NR_creat;
	case NR32_link: return NR_link;
	case NR32_unlink: return NR_unlink;
	case NR32_execve: return NR_execve;
	case NR32_rename: return NR_rename;
	case NR32_rmdir: return NR_rmdir;
	case NR32_mmap: return NR_old_mmap_ia32;
	case NR32_truncate: case NR32_truncate64: return NR_truncate;
	case NR32_ftruncate: case NR32_ftruncate64: return NR_ftruncate;
	case NR32_readv: return NR_readv;
	case NR32_writev: return NR_writev;
	case NR32_pread64: return NR_pread64;
	case NR32_pwrite64: return NR_pwrite64;
	case NR32_sendfile: case NR32_sendfile64: return NR_sendfile;
	case NR32_mmap2: return NR_mmap;
	case NR32_openat: return NR_openat;
	case NR32_unlinkat: return NR_unlinkat;
	case NR32_renameat: return NR_renameat;
	case NR32_linkat: return NR_linkat;
	case NR32_splice: return NR_splice;
	case NR32_fallocate: return NR_fallocate;
	case NR32_preadv: return NR_preadv;
	case NR32_pwritev: return NR_pwritev;
	case NR32_renameat2: return NR_renameat2;
	case NR32_execveat: return NR_execveat;
	case NR32_copy_file_range: return NR_copy_file_range;
	case NR32_preadv2: return NR_preadv2;
	case NR32_pwritev2: return NR_pwritev2;
	case NR32_openat2: return NR_openat2;
	}
	return -1;
}

static __always_inline bool handled(long nr)
{
	switch (nr) {
	case NR_read: case NR_pread64: case NR_readv: case NR_preadv: case NR_preadv2:
	case NR_write: case NR_pwrite64: case NR_writev: case NR_pwritev: case NR_pwritev2:
	case NR_sendfile: case NR_copy_file_range: case NR_splice: case NR_fallocate:
	case NR_ftruncate: case NR_mmap: case NR_old_mmap_ia32:
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
	case NR_execve: case NR_execveat:
	case NR_rename: case NR_renameat: case NR_renameat2: case NR_link: case NR_linkat:
	case NR_unlink: case NR_unlinkat: case NR_rmdir: case NR_truncate:
		return true;
	}
	return false;
}

static __always_inline int on_open(long fd, long flags)
{
	__u32 access = ACC_OPENED;

	/* O_PATH ignores O_CREAT and O_TRUNC */
	if (fd < 0 || (flags & O_PATH) || !(flags & (O_CREAT | O_TRUNC)))
		return 0;
	if (flags & O_TRUNC)   /* O_RDONLY|O_TRUNC truncates too */
		access |= ROAR_ACC_TRUNC;
	return fd_access(fd, access);   /* creations and truncations: no hold, whatever the fd */
}

static __always_inline int on_mmap(long ret, long prot, long flags, long fd)
{
	__u32 access = 0;
	__u32 type = flags & MAP_TYPE;

	if ((ret < 0 && ret > -4096) || (flags & MAP_ANONYMOUS) || (int)fd < 0)
		return 0;
	if (prot & (PROT_READ | PROT_EXEC))
		access |= ROAR_ACC_MMAP_READ;
	if ((prot & PROT_WRITE) && (type == MAP_SHARED || type == MAP_SHARED_VALIDATE))
		access |= ROAR_ACC_MMAP_WRITE;
	return access ? fd_access((int)fd, access) : 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	long nr = regs->orig_ax;
	/* a 32-bit syscall (an ia32 program, or int 0x80) has numbers of its own */
	int compat = t->thread_info.status & TS_COMPAT;
	if (compat)
		nr = ia32_native(nr);
	if (!handled(nr))
		return 0;
	if (!tracked_now())
		return 0;

	long a0 = sys_arg(regs, compat, 0);
	long a1 = sys_arg(regs, compat, 1);
	long a2 = sys_arg(regs, compat, 2);

	switch (nr) {
	case NR_read: case NR_pread64: case NR_readv: case NR_preadv: case NR_preadv2:
		return ret >= 0 ? fd_access(a0, ROAR_ACC_READ) : 0;
	case NR_write: case NR_pwrite64: case NR_writev: case NR_pwritev: case NR_pwritev2:
		return ret > 0 ? fd_access(a0, ROAR_ACC_WRITE) : 0;
	case NR_fallocate:
		return ret == 0 ? fd_access(a0, ROAR_ACC_WRITE) : 0;
	case NR_ftruncate:
		return ret == 0 ? fd_access(a0, ROAR_ACC_TRUNC) : 0;
	case NR_sendfile:   /* (out_fd, in_fd, ...) */
		if (ret > 0) {
			fd_access(a1, ROAR_ACC_READ);
			fd_access(a0, ROAR_ACC_WRITE);
		}
		return 0;
	case NR_copy_file_range: case NR_splice:   /* (fd_in, off_in, fd_out, ...) */
		if (ret > 0) {
			fd_access(a0, ROAR_ACC_READ);
			fd_access(a2, ROAR_ACC_WRITE);
		}
		return 0;
	case NR_mmap:
		return on_mmap(ret, a2, sys_arg(regs, compat, 3), sys_arg(regs, compat, 4));
	case NR_old_mmap_ia32: {   /* struct mmap_arg_struct: addr, len, prot, flags, fd, offset */
		__u32 m[6] = {};
		bpf_probe_read_user(m, sizeof(m), (void *)a0);
		return on_mmap(ret, m[2], m[3], (int)m[4]);
	}
	case NR_open:
		return on_open(ret, a1);
	case NR_creat:
		return on_open(ret, O_CREAT | O_TRUNC | 1);
	case NR_openat:
		return on_open(ret, a2);
	case NR_openat2: {
		struct open_how how = {};
		if (ret < 0)
			return 0;
		bpf_probe_read_user(&how, sizeof(how.flags), (void *)a2);
		return on_open(ret, how.flags);
	}
	case NR_execve:
		return ret < 0 ? exec_failed(ret, a0) : 0;
	case NR_execveat:
		return ret < 0 ? exec_failed(ret, a1) : 0;
	}

	if (ret != 0)   /* a name operation that failed changed nothing */
		return 0;
	return name_op(nr, compat);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid, flags = 0;
	__u8 one = 1;

	if (ctgid == ptgid || !is_tracked(ptgid))
		return 0;   /* threads share their process's state */
	/* tracked before the child first runs: its first file access is seen */
	if (bpf_map_update_elem(&tracked, &ctgid, &one, BPF_ANY)) {
		count(ROAR_STAT_UNTRACKED);   /* the map is full: the child's subtree goes unseen */
		flags = ROAR_FORK_UNTRACKED;
	}
	struct scratch *s = scratch_get();
	if (!s)
		return 0;
	header(s, ROAR_EV_FORK, ptgid, parent->pid);
	struct ev_fork *e = (void *)s->buf;
	e->parent_tgid = ptgid;
	e->child_tgid = ctgid;
	e->flags = flags;
	e->_pad = 0;
	submit(s, sizeof(*e));
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;
	if (!is_tracked(tgid))
		return 0;
	struct scratch *s = scratch_get();
	if (!s)
		return 0;
	header(s, ROAR_EV_EXEC, tgid, p->pid);
	struct ev_exec *e = (void *)s->buf;
	e->ret = 0;
	e->argc = BPF_CORE_READ(bprm, argc);
	e->flags = BPF_CORE_READ_BITFIELD_PROBED(bprm, secureexec) ? ROAR_EXEC_PRIVILEGED : 0;
	__u32 off = sizeof(*e), start = off;
	off = put_kernel_str(s, off, BPF_CORE_READ(bprm, filename));
	e->filename_len = off - start;
	start = off;
	off = put_cwd(s, off, p);
	e->cwd_len = off - start;
	start = off;
	struct file *exe = BPF_CORE_READ(p, mm, exe_file);
	off = exe ? put_file_path(s, off, exe) : put_empty(s, off);
	e->exe_len = off - start;

	unsigned long arg_start = BPF_CORE_READ(p, mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(p, mm, arg_end);
	__u32 len = arg_end > arg_start ? arg_end - arg_start : 0;
	e->argv_truncated = len > ROAR_ARGV_MAX;
	if (len > ROAR_ARGV_MAX)
		len = ROAR_ARGV_MAX;
	if (off >= STR_END)
		len = 0;
	if (len && off < STR_END && bpf_probe_read_user(&s->buf[off], len, (void *)arg_start))
		len = 0;
	e->argv_len = len;
	__u32 privileged = e->flags & ROAR_EXEC_PRIVILEGED;
	__u32 tid = p->pid;
	/* a hold still pending at an exec is void: the program's descriptors are not the ones read */
	bpf_map_delete_elem(&pin_reqs, &tid);
	submit(s, off + len);
	if (privileged) {   /* the exec itself is recorded; nothing after it, nor its children */
		bpf_map_delete_elem(&tracked, &tgid);
		struct last_inodes *l = bpf_task_storage_get(&last, bpf_get_current_task_btf(), 0, 0);
		if (l)
			l->tracked = 0;
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	if (!is_tracked(tgid))
		return 0;
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;   /* other threads of the process still run */
	struct scratch *s = scratch_get();
	if (s) {
		header(s, ROAR_EV_EXIT, tgid, p->pid);
		struct ev_exit *e = (void *)s->buf;
		e->wait_status = BPF_CORE_READ(p, exit_code);
		e->_pad = 0;
		submit(s, sizeof(*e));
	}
	bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

/*
 * Environment variables read: uprobes on libc's getenv (secure_getenv calls it
 * too). The entry keeps the name pointer per thread, the return reads name and
 * value: the value the program got, even one set after it started. Attached
 * by roar/tracer/loader.py to each libc the system uses, for every process
 * (a uprobe cannot follow a process tree): an untracked process pays the two
 * traps and one hash lookup.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);     /* pid_tgid: a thread is in one getenv at a time */
	__type(value, __u64);   /* the name argument */
} getenv_calls SEC(".maps");

struct env_key {
	__u64 start;            /* the process's start time, as in seen_key */
	__u32 tgid;
	__u32 _pad;
	char name[ROAR_ENV_NAME_MAX];
};

/* (process, name) already reported. LRU: an eviction repeats an event, the
 * collector keeps the first; never a lost one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct env_key);
	__type(value, __u8);
} env_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct env_key);
} env_key_scratch SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(on_getenv, const char *name)   /* BPF_KPROBE: the pt_regs form uprobes use too */
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 arg = (__u64)name;

	if (!is_tracked(pid_tgid >> 32))
		return 0;
	bpf_map_update_elem(&getenv_calls, &pid_tgid, &arg, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_getenv_ret, const char *value)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0, flags = 0;
	__u8 one = 1;

	__u64 *arg = bpf_map_lookup_elem(&getenv_calls, &pid_tgid);
	if (!arg)
		return 0;   /* untracked, or the entry was missed */
	const char *name = (const char *)*arg;
	bpf_map_delete_elem(&getenv_calls, &pid_tgid);

	struct env_key *key = bpf_map_lookup_elem(&env_key_scratch, &zero);
	if (!key)
		return 0;
	__builtin_memset(key, 0, sizeof(*key));   /* hashed whole: no stale bytes after the name */
	key->start = bpf_get_current_task_btf()->group_leader->start_time;
	key->tgid = pid_tgid >> 32;
	long n = bpf_probe_read_user_str(key->name, sizeof(key->name), name);
	if (n <= 1)
		return 0;   /* unreadable or empty name: nothing a program could have read */
	if (n == sizeof(key->name))
		flags |= ROAR_ENV_NAME_CUT;
	if (bpf_map_lookup_elem(&env_seen, key))
		return 0;

	struct scratch *s = scratch_get();
	if (!s)
		return 0;
	header(s, ROAR_EV_ENV, key->tgid, (__u32)pid_tgid);
	struct ev_env *e = (void *)s->buf;
	__u32 off = sizeof(*e);
	if (bpf_probe_read_kernel_str(&s->buf[off], sizeof(key->name), key->name) != n)
		return 0;
	e->name_len = n;
	off += n;
	long v = 0;
	if (value) {
		flags |= ROAR_ENV_SET;
		if (off < FIXED_MAX + ROAR_ENV_NAME_MAX)   /* always: bounds the offset for the verifier */
			v = bpf_probe_read_user_str(&s->buf[off], ROAR_ENV_VALUE_MAX, value);
		if (v <= 0)
			v = 0;
		else if (v == ROAR_ENV_VALUE_MAX)
			flags |= ROAR_ENV_VALUE_CUT;
	}
	if (!v && off < FIXED_MAX + ROAR_ENV_NAME_MAX) {
		s->buf[off] = 0;
		v = 1;
	}
	e->value_len = v;
	e->flags = flags;
	if (submit_event(s, off + v, false))
		return 0;   /* dropped (counted): the next read tries again */
	bpf_map_update_elem(&env_seen, key, &one, BPF_ANY);
	return 0;
}
