// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * The kernel half of `thaw trace`: every user page fault of one process and
 * how long a faulting thread was off-CPU until it ran again.
 *
 * A stall is an interval in which a thread that is handling a page fault
 * blocks: from its switch-out (sched_switch with the thread as prev, asleep,
 * not preempted) to its next switch-in. That is what a userfaultfd handler, a
 * read from disk or a lock costs the thread whoever serves the fault. The
 * fault is taken as being handled from the page_fault_user tracepoint until
 * the thread's next fault or system call: user mode cannot block otherwise.
 *
 * The license string is GPL because tp_btf programs need GPL-only helpers
 * to load; the code is also available under MIT like the rest of thaw.
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "fault_trace.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/*
 * Task states that mean "asleep, waiting": what a fault handler's wait
 * uses (interruptible, killable, uninterruptible I/O). Stopped, traced and
 * dead tasks have neither bit, so a job-control stop after a fault is not a
 * stall. Kernel ABI values; vmlinux.h carries no macros.
 */
#define TASK_INTERRUPTIBLE   0x1
#define TASK_UNINTERRUPTIBLE 0x2

/* Set by `thaw trace` before load: the process to watch. */
const volatile __u32 target_tgid = 0;

/* Events the ring buffer had no room for; user space reports them. */
__u64 lost_events = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/*
 * Per thread of the target that is handling a fault (no entry otherwise):
 * when it blocked.
 */
struct fault_state {
	__u64 off_ns; /* 0 while on-CPU */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct fault_state);
} in_fault SEC(".maps");

static __always_inline void emit(__u32 kind, __u32 tid, __u64 addr, __u64 ts, __u64 stall)
{
	struct fault_trace_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	e->ts_ns = ts;
	e->addr = addr;
	e->stall_ns = stall;
	e->tid = tid;
	e->kind = kind;
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(on_fault, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	__u32 tid = (__u32)id;
	struct fault_state st = { 0 };
	bpf_map_update_elem(&in_fault, &tid, &st, BPF_ANY);
	emit(FAULT_TRACE_FAULT, tid, address, bpf_ktime_get_ns(), 0);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_syscall, struct pt_regs *regs, long nr)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	__u32 tid = (__u32)id;
	bpf_map_delete_elem(&in_fault, &tid);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u64 now = 0;
	if (prev->tgid == (int)target_tgid && !preempt &&
	    (prev_state & (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE))) {
		__u32 tid = prev->pid;
		struct fault_state *st = bpf_map_lookup_elem(&in_fault, &tid);
		if (st) {
			now = bpf_ktime_get_ns();
			st->off_ns = now;
		}
	}
	if (next->tgid == (int)target_tgid) {
		__u32 tid = next->pid;
		struct fault_state *st = bpf_map_lookup_elem(&in_fault, &tid);
		if (st && st->off_ns) {
			if (!now)
				now = bpf_ktime_get_ns();
			emit(FAULT_TRACE_STALL, tid, 0, now, now - st->off_ns);
			st->off_ns = 0;
		}
	}
	return 0;
}
