/* SPDX-License-Identifier: MIT */
/*
 * What the fault tracer's BPF program (fault_trace.bpf.c) sends to `thaw
 * trace` through its ring buffer. Shared by both sides, so only fixed-size
 * kernel types (__u32, __u64) appear here.
 */
#ifndef THAW_FAULT_TRACE_H
#define THAW_FAULT_TRACE_H

enum fault_trace_kind {
	/* A user-mode page fault of the traced process (addr, tid, ts_ns). */
	FAULT_TRACE_FAULT = 1,
	/*
	 * A thread that blocked while handling a page fault ran again:
	 * stall_ns is the time from its switch-out to its switch-in (addr 0).
	 */
	FAULT_TRACE_STALL = 2,
};

struct fault_trace_event {
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__u64 addr;
	__u64 stall_ns;
	__u32 tid;
	__u32 kind;
};

#endif
