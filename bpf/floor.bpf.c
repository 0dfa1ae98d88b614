// SPDX-License-Identifier: GPL-2.0
/*
 * The floor for scripts/bench_tracer.py: programs that do nothing, on the
 * attach points roar.bpf.c uses. Attaching tp_btf/sys_exit alone sends every
 * process on the machine through the slow syscall-exit path and a trampoline
 * call; what roar costs above this is the cost of its own work.
 *
 * Names differ from roar's (on_*) so the bench's checks for roar programs
 * left attached, and for other roar jobs, never count these.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(floor_fork, struct task_struct *parent, struct task_struct *child)
{
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(floor_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(floor_exit, struct task_struct *p)
{
	return 0;
}
