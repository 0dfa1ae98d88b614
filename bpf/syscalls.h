/* SPDX-License-Identifier: GPL-2.0 */
/* Syscall numbers roar handles, per architecture (from the kernel's
 * arch/x86/entry/syscalls/syscall_64.tbl). Only x86_64 is supported today. */
#ifndef ROAR_SYSCALLS_H
#define ROAR_SYSCALLS_H

#if defined(__TARGET_ARCH_x86)
#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_mmap 9
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_sendfile 40
#define NR_execve 59
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_rename 82
#define NR_rmdir 84
#define NR_creat 85
#define NR_link 86
#define NR_unlink 87
#define NR_openat 257
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_splice 275
#define NR_fallocate 285
#define NR_preadv 295
#define NR_pwritev 296
#define NR_renameat2 316
#define NR_execveat 322
#define NR_copy_file_range 326
#define NR_preadv2 327
#define NR_pwritev2 328
#define NR_openat2 437
#else
#error "roar's tracer supports x86_64 only (add this architecture's syscall numbers)"
#endif

#endif /* ROAR_SYSCALLS_H */
