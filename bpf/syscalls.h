/* SPDX-License-Identifier: GPL-2.0 */
/* Syscall numbers roar handles, per architecture (from the kernel's
 * arch/x86/entry/syscalls/syscall_{64,32}.tbl). Only x86_64 is supported today. */
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

/* ia32 (compat) numbers, from syscall_32.tbl: a 32-bit program's syscalls are
 * mapped to the x86_64 ones above; its arguments are in ebx, ecx, edx, esi, edi. */
#define NR32_read 3
#define NR32_write 4
#define NR32_open 5
#define NR32_creat 8
#define NR32_link 9
#define NR32_unlink 10
#define NR32_execve 11
#define NR32_rename 38
#define NR32_rmdir 40
#define NR32_mmap 90          /* old_mmap: one pointer to six 32-bit arguments */
#define NR32_truncate 92
#define NR32_ftruncate 93
#define NR32_readv 145
#define NR32_writev 146
#define NR32_pread64 180
#define NR32_pwrite64 181
#define NR32_sendfile 187
#define NR32_mmap2 192
#define NR32_truncate64 193
#define NR32_ftruncate64 194
#define NR32_sendfile64 239
#define NR32_openat 295
#define NR32_unlinkat 301
#define NR32_renameat 302
#define NR32_linkat 303
#define NR32_splice 313
#define NR32_fallocate 324
#define NR32_preadv 333
#define NR32_pwritev 334
#define NR32_renameat2 353
#define NR32_execveat 358
#define NR32_copy_file_range 377
#define NR32_preadv2 378
#define NR32_pwritev2 379
#define NR32_openat2 437
#define NR_old_mmap_ia32 100000   /* no x86_64 twin: a number of roar's own */
#define TS_COMPAT 0x0002           /* thread_info.status: a 32-bit syscall is running */
#else
#error "roar's tracer supports x86_64 only (add this architecture's syscall numbers)"
#endif

#endif /* ROAR_SYSCALLS_H */
