/* SPDX-License-Identifier: MIT */
/*
 * The sandbox on Linux: one seccomp-BPF allow-list per kind of thread. A
 * system call outside a thread's list kills the whole process
 * (SECCOMP_RET_KILL_PROCESS), which the kernel logs (audit type=1326, in
 * dmesg) with the syscall number.
 *
 * libseccomp turns the readable tables below into BPF: the architecture
 * check, the x32 syscall range, 64-bit argument comparisons split into
 * 32-bit halves and a binary search over syscall numbers, all of which are
 * easy to get subtly wrong by hand. It is only used when the filters are
 * built (os_sandbox_create): each program is exported once, and a thread
 * confines itself with one prctl and one seccomp() call, no allocation.
 *
 * The lists are what the library's own threads do (see README "Sandbox").
 * A thread that needs a new system call needs a line here; the e2e suite
 * runs with the sandbox on, so a missing line shows up there as SIGSYS.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/vfio.h>
#include <linux/vhost.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/linux/seccomp_rules.h"
#include "utils.h"

/* The signal core/vcpu.c uses to kick a vCPU out of KVM_RUN. */
#define KICK_SIGNAL SIGUSR2

#define NO_EXEC ARG_MASKED_EQ(2, PROT_EXEC, 0)

static const struct seccomp_allow base_rules[] = {
	/* Memory, for malloc/free and thread stacks: never executable. */
	ALLOW_IF(mmap, K_ALL, NO_EXEC),
	ALLOW_IF(mprotect, K_ALL, NO_EXEC),
	ALLOW(munmap, K_ALL),
	ALLOW(mremap, K_ALL),
	ALLOW(madvise, K_ALL),
	ALLOW(brk, K_ALL),

	/* Locks, signal masks, leaving a thread; abort() still aborts. */
	ALLOW(futex, K_ALL),
	ALLOW(rt_sigprocmask, K_ALL),
	ALLOW(restart_syscall, K_ALL),
	ALLOW(exit, K_ALL),
	ALLOW(getpid, K_ALL),
	ALLOW(gettid, K_ALL),
	ALLOW_IF2(tgkill, K_ALL, ARG_EQ(0, SECCOMP_OWN_PID), ARG_EQ(2, SIGABRT)),
	/* vm_request_exit/vm_stop kick vCPUs. */
	ALLOW_IF2(tgkill, K_VCPU | K_IO | K_MAIN,
		  ARG_EQ(0, SECCOMP_OWN_PID), ARG_EQ(2, KICK_SIGNAL)),
	/* The end of a signal handler: the kick's on vCPU threads, and any
	 * handled signal that lands on a thread that does not block it
	 * (a stray SIGUSR2 from outside may pick the main thread). */
	ALLOW(rt_sigreturn, K_ALL),

	/* Console output and logs (core/output.c: every thread logs),
	 * eventfd signals (irqfd, wake-ups), TAP frames. */
	ALLOW(write, K_ALL),
	ALLOW(writev, K_ALL),
	/* Output to a socket (stdout/stderr under systemd, say): never
	 * blocking, never SIGPIPE; no socket can be made to aim it at. */
	ALLOW_IF(sendmsg, K_ALL, ARG_EQ(2, MSG_DONTWAIT | MSG_NOSIGNAL)),
	/* Input, TAP frames, eventfds; the main thread reads signals. */
	ALLOW(read, K_IO | K_BLK | K_MAIN | K_API),
	ALLOW(readv, K_IO),

	/* The I/O thread's loop; a vCPU resumes a paused watch or arms
	 * output; watches are dropped by the I/O thread or at vm_destroy. */
	ALLOW(epoll_wait, K_IO),
	ALLOW(epoll_pwait, K_IO),
	ALLOW_IF(epoll_ctl, K_VCPU | K_IO, ARG_EQ(1, EPOLL_CTL_MOD)),
	ALLOW_IF(epoll_ctl, K_IO | K_MAIN, ARG_EQ(1, EPOLL_CTL_DEL)),
	ALLOW(poll, K_BLK | K_MAIN | K_API),
	ALLOW(ppoll, K_BLK | K_MAIN | K_API),

	/* The API socket's server (cli/api/server.c) takes connections on
	 * its listening socket, times them out, closes them, and removes its
	 * socket file as it ends: no new sockets, no other files. */
	ALLOW(accept4, K_API),
	ALLOW(close, K_API),
	ALLOW(clock_gettime, K_API),
	ALLOW(unlink, K_API),

	/* virtio-rng. */
	ALLOW(getrandom, K_IO),

	/* virtio-vsock's host side (devices/virtio/vsock_conn.c), on the I/O
	 * thread: clients accepted at the listening socket, the guest's
	 * connections to <uds>_<port> (Unix sockets only), the CONNECT line
	 * peeked at, a write side shut when the guest stops sending, every
	 * socket in the device's own epoll set; a timerfd ends handshakes
	 * that take too long. A device reset closes the connections on the
	 * vCPU thread; vm_destroy removes the listener's path. */
	ALLOW(accept4, K_IO),
	ALLOW_IF2(socket, K_IO, ARG_EQ(0, AF_UNIX),
		  ARG_EQ(1, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)),
	ALLOW(connect, K_IO),
	ALLOW_IF(recvfrom, K_IO, ARG_EQ(3, MSG_PEEK | MSG_DONTWAIT)),
	ALLOW(shutdown, K_IO),
	ALLOW_IF(epoll_ctl, K_IO, ARG_EQ(1, EPOLL_CTL_ADD)),
	ALLOW(timerfd_settime, K_IO),
	ALLOW(clock_gettime, K_IO),
	ALLOW(close, K_VCPU | K_IO),
	ALLOW(unlink, K_MAIN),

	/* virtio-blk: data, flush, discard and write-zeroes. */
	ALLOW(pread64, K_BLK),
	ALLOW(pwrite64, K_BLK),
	ALLOW(preadv, K_BLK),
	ALLOW(pwritev, K_BLK),
	ALLOW(pwritev2, K_BLK),
	ALLOW(fdatasync, K_BLK),
	ALLOW(fallocate, K_BLK),
	/* ... and on io_uring (devices/virtio/blk_uring.c): the ring is set
	 * up, given its files and restricted to READV/WRITEV/FSYNC on them by
	 * the creating thread; the worker only submits and waits. */
	ALLOW(io_uring_enter, K_BLK),

	/* ioctls, each by its request number. */
	IOCTL(K_VCPU, KVM_RUN),
	/* vCPU: an emulation failure's instruction bytes (kvm_arch_fetch_insn);
	 * main: the register dump after a guest crash (with KVM_GET_SREGS). */
	IOCTL(K_VCPU | K_MAIN, KVM_GET_REGS),
	IOCTL(K_VCPU, KVM_TRANSLATE),
	/* Interrupts where there is no irqfd (UART, virtio fallback). */
	/* ... and the keys SendCtrlAltDel presses (API, main thread). */
	IOCTL(K_VCPU | K_IO | K_BLK | K_MAIN, KVM_IRQ_LINE),
	/* virtio-net: the TAP's offloads follow the driver's features. */
	IOCTL(K_VCPU, TUNSETOFFLOAD),
	/* virtio-net with vhost=on: rings handed to vhost at DRIVER_OK and
	 * its backend taken away at reset, both on the status register's
	 * vCPU thread (SET_OWNER and GET_FEATURES run before the sandbox). */
	IOCTL(K_VCPU, VHOST_SET_FEATURES),
	IOCTL(K_VCPU, VHOST_SET_MEM_TABLE),
	IOCTL(K_VCPU, VHOST_SET_VRING_NUM),
	IOCTL(K_VCPU, VHOST_SET_VRING_BASE),
	IOCTL(K_VCPU, VHOST_SET_VRING_ADDR),
	IOCTL(K_VCPU, VHOST_SET_VRING_KICK),
	IOCTL(K_VCPU, VHOST_SET_VRING_CALL),
	/* ... and with several queue pairs, the control queue (I/O thread)
	 * attaches and detaches TAP queues and their vhost backends; reset
	 * (vCPU) detaches them. TUNSETIFF itself runs before the sandbox. */
	/* A snapshot (main thread) stops vhost and reads its rings' positions,
	 * then gives the backend back. */
	IOCTL(K_VCPU | K_IO | K_MAIN, VHOST_NET_SET_BACKEND),
	IOCTL(K_MAIN, VHOST_GET_VRING_BASE),
	IOCTL(K_VCPU | K_IO, TUNSETQUEUE),
	/* PCI functions' MSI-X vectors (vm_msi_route): the guest unmasks and
	 * programs them by MMIO and configuration writes (vCPU threads). */
	IOCTL(K_VCPU, KVM_SET_GSI_ROUTING),
	/* Assigned devices (--vfio, devices/vfio/vfio_pci.c): the guest
	 * places BARs (their device memory slots follow, on the vCPU thread
	 * of the configuration write), turns MSI-X on and off (VFIO's
	 * eventfds), and reaches trapped registers through the device fd.
	 * At exit the main thread takes it all down: MSI-X off, slots
	 * removed, the device reset, guest RAM's DMA unmapped, the group
	 * out of the container. */
	IOCTL(K_VCPU | K_MAIN, KVM_SET_USER_MEMORY_REGION),
	IOCTL(K_VCPU | K_MAIN, VFIO_DEVICE_SET_IRQS),
	IOCTL(K_MAIN, VFIO_DEVICE_RESET),
	IOCTL(K_MAIN, VFIO_IOMMU_UNMAP_DMA),
	IOCTL(K_MAIN, VFIO_GROUP_UNSET_CONTAINER),
	ALLOW(pread64, K_VCPU),
	ALLOW(pwrite64, K_VCPU),
	/* virtio-pci's notify ioeventfds follow its BAR when the guest
	 * enables decoding or moves it (a configuration write, vCPU). */
	IOCTL(K_VCPU, KVM_IOEVENTFD),
	IOCTL(K_MAIN, KVM_GET_SREGS),
	/* vm_pause/vm_resume: the guest clock (x86 kvmclock). */
	IOCTL(K_MAIN, KVM_KVMCLOCK_CTRL),
	IOCTL(K_MAIN, KVM_GET_CLOCK),
	IOCTL(K_MAIN, KVM_SET_CLOCK),
	/* Snapshot state of a paused VM (core/snapstate.c): a vCPU's last
	 * I/O exit is finished by one KVM_RUN with the kick set, which
	 * returns before any guest code runs; the state's own ioctls are
	 * the arch's (seccomp_arch_<arch>.c). */
	IOCTL(K_MAIN, KVM_RUN),
	/* Restoring the terminal (tcsetattr, isatty). */
	IOCTL(K_MAIN, TCGETS),
	IOCTL(K_MAIN, TCSETS),
	IOCTL(K_MAIN, TCSETSW),
	IOCTL(K_MAIN, TCSETSF),

	/* virtio_blk_replace_image (the API's PATCH /drives) opens the new
	 * image on the main thread: open it (plain read or read-write, no
	 * creating or truncating), see what it is, lock it, find its size
	 * and cache=none's alignment. */
	ALLOW_IF(openat, K_MAIN, ARG_MASKED_EQ(2, ~(unsigned long long)(O_ACCMODE | O_CLOEXEC |
							    O_DIRECT | O_LARGEFILE), 0)),
	ALLOW(fstat, K_MAIN),
	ALLOW(newfstatat, K_MAIN),
	ALLOW(statx, K_MAIN),
	ALLOW(flock, K_MAIN),
	ALLOW(lseek, K_MAIN),
	IOCTL(K_MAIN, BLKSSZGET),
	/* ... or the same image again (resized): its descriptors duplicated. */
	ALLOW_IF(fcntl, K_MAIN, ARG_EQ(1, F_DUPFD_CLOEXEC)),
	/* vm_snapshot_fds (--snapshot-on-signal): the state and memory files,
	 * opened before the sandbox, rewritten from the start and synced. */
	ALLOW(ftruncate, K_MAIN),
	ALLOW(pwrite64, K_MAIN),
	ALLOW(fsync, K_MAIN),
	/* ... and vm_snapshot (the API's PUT /snapshot/create, as Firecracker
	 * does): its files created or truncated for writing, the state file
	 * renamed into place (unlink, above, drops a failed one). */
	ALLOW_IF(openat, K_MAIN, ARG_MASKED_EQ(2, ~(unsigned long long)(O_WRONLY | O_CREAT |
							    O_TRUNC | O_CLOEXEC |
							    O_LARGEFILE), 0)),
	ALLOW(rename, K_MAIN),
	ALLOW(renameat, K_MAIN),
	ALLOW(renameat2, K_MAIN),

	/* vm_destroy: console output gets a last second to drain (a poll
	 * deadline; SIGPIPEs held and discarded), the flags of a borrowed
	 * stdout are restored, fds closed; then the end of the program. */
	ALLOW(clock_gettime, K_MAIN),
	ALLOW(rt_sigtimedwait, K_MAIN),
	ALLOW_IF(fcntl, K_MAIN, ARG_EQ(1, F_SETFL)),
	ALLOW(close, K_MAIN),
	ALLOW(exit_group, K_MAIN),
};

struct os_sandbox {
	struct sock_filter *prog[OS_THREAD_KINDS];
	unsigned short len[OS_THREAD_KINDS];
	struct os_sandbox_size size[OS_THREAD_KINDS];
};

const char *os_thread_kind_name(enum os_thread_kind kind)
{
	static const char *const names[OS_THREAD_KINDS] = {
		[OS_THREAD_VCPU] = "vcpu", [OS_THREAD_IO] = "io",
		[OS_THREAD_BLK] = "blk", [OS_THREAD_MAIN] = "main",
		[OS_THREAD_API] = "api",
	};

	return kind < OS_THREAD_KINDS ? names[kind] : "?";
}

/* How many distinct syscalls the rules with `bit` allow. */
static unsigned count_syscalls(const struct seccomp_allow *const lists[],
			       const size_t sizes[], int nr_lists, unsigned bit)
{
	int seen[256];
	unsigned n = 0;

	for (int l = 0; l < nr_lists; l++) {
		for (size_t i = 0; i < sizes[l]; i++) {
			unsigned j = 0;

			if (!(lists[l][i].kinds & bit))
				continue;
			while (j < n && seen[j] != lists[l][i].nr)
				j++;
			if (j == n && n < ARRAY_SIZE(seen))
				seen[n++] = lists[l][i].nr;
		}
	}
	return n;
}

static int add_rules(scmp_filter_ctx ctx, const struct seccomp_allow *r,
		     size_t n, unsigned bit, pid_t pid, unsigned *nr_rules,
		     char *why, size_t why_len)
{
	for (size_t i = 0; i < n; i++) {
		struct scmp_arg_cmp args[2];
		int err;

		if (!(r[i].kinds & bit))
			continue;
		memcpy(args, r[i].args, sizeof(args));
		for (unsigned a = 0; a < r[i].nargs; a++)
			if (args[a].datum_a == SECCOMP_OWN_PID)
				args[a].datum_a = (uint64_t)pid;
		err = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r[i].nr, r[i].nargs, args);
		if (err) {
			set_why(why, why_len, "seccomp rule for syscall %d: %s", r[i].nr,
				strerror(-err));
			return err;
		}
		(*nr_rules)++;
	}
	return 0;
}

/* The BPF program libseccomp generated, copied out of it. */
static int export_program(scmp_filter_ctx ctx, struct sock_filter **prog,
			  unsigned short *len)
{
	int fd = memfd_create("vibevmm-seccomp", MFD_CLOEXEC);
	off_t size;
	int err = 0;

	if (fd < 0)
		return -errno;
	err = seccomp_export_bpf(ctx, fd);
	size = err ? 0 : lseek(fd, 0, SEEK_END);
	if (!err && (size <= 0 || size % (off_t)sizeof(**prog) ||
		     size / (off_t)sizeof(**prog) > BPF_MAXINSNS))
		err = -E2BIG;
	if (!err && !(*prog = malloc((size_t)size)))
		err = -ENOMEM;
	if (!err && pread(fd, *prog, (size_t)size, 0) != size)
		err = -EIO;
	if (!err)
		*len = (unsigned short)(size / (off_t)sizeof(**prog));
	close(fd);
	return err;
}

static int build_kind(struct os_sandbox *sb, enum os_thread_kind kind,
		      pid_t pid, char *why, size_t why_len)
{
	size_t nr_arch, nr_extra;
	const struct seccomp_allow *arch = seccomp_arch_rules(&nr_arch);
	const struct seccomp_allow *extra = seccomp_extra_rules(&nr_extra);
	const struct seccomp_allow *const lists[] = { base_rules, arch, extra };
	const size_t sizes[] = { ARRAY_SIZE(base_rules), nr_arch, nr_extra };
	unsigned bit = 1u << kind;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int err;

	if (!ctx) {
		set_why(why, why_len, "libseccomp cannot make a filter");
		return -ENOMEM;
	}
	err = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (!err) /* a binary search: the vCPU's KVM_RUN should not wait */
		err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (err)
		set_why(why, why_len, "libseccomp attributes: %s", strerror(-err));
	for (int l = 0; !err && l < (int)ARRAY_SIZE(lists); l++)
		err = add_rules(ctx, lists[l], sizes[l], bit, pid, &sb->size[kind].rules,
				why, why_len);
	if (!err) {
		err = export_program(ctx, &sb->prog[kind], &sb->len[kind]);
		if (err)
			set_why(why, why_len, "exporting the %s filter: %s",
				os_thread_kind_name(kind), strerror(-err));
	}
	seccomp_release(ctx);
	sb->size[kind].syscalls = count_syscalls(lists, sizes, (int)ARRAY_SIZE(lists), bit);
	sb->size[kind].bpf_insns = sb->len[kind];
	return err;
}

int os_sandbox_confine(const struct os_sandbox *sb, enum os_thread_kind kind)
{
	struct sock_fprog prog;

	if (!sb || kind >= OS_THREAD_KINDS)
		return -EINVAL;
	prog = (struct sock_fprog){ .len = sb->len[kind], .filter = sb->prog[kind] };
	/* Required to filter without CAP_SYS_ADMIN; also the right thing: no
	 * setuid gains for whatever this thread might exec (nothing). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

struct probe {
	const struct os_sandbox *sb;
	enum os_thread_kind kind;
	int err;
};

static void *probe_thread(void *arg)
{
	struct probe *p = arg;

	os_thread_set_name("seccomp-probe");
	p->err = os_sandbox_confine(p->sb, p->kind);
	return NULL; /* leaving the thread runs under the filter too */
}

/* Install `kind`'s filter on a throw-away thread: what a real thread of
 * that kind will do, including its exit, checked before anything runs. */
static int probe(const struct os_sandbox *sb, enum os_thread_kind kind)
{
	struct probe p = { sb, kind, 0 };
	sigset_t all, saved;
	pthread_t t;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	err = pthread_create(&t, NULL, probe_thread, &p);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (err)
		return -err;
	pthread_join(t, NULL);
	return p.err;
}

void os_sandbox_free(struct os_sandbox *sb)
{
	if (!sb)
		return;
	for (int k = 0; k < OS_THREAD_KINDS; k++)
		free(sb->prog[k]);
	free(sb);
}

int os_sandbox_create(struct os_sandbox **out, char *why, size_t why_len)
{
	struct os_sandbox *sb;
	int err = 0;

	*out = NULL;
	/* API level 3: the kernel has SECCOMP_RET_KILL_PROCESS (Linux 4.14). */
	if (seccomp_api_get() < 3) {
		set_why(why, why_len, "this kernel's seccomp cannot kill a process (Linux 4.14 or later needed)");
		return -ENOTSUP;
	}
	sb = calloc(1, sizeof(*sb));
	if (!sb) {
		set_why(why, why_len, "out of memory");
		return -ENOMEM;
	}
	for (int k = 0; !err && k < OS_THREAD_KINDS; k++)
		err = build_kind(sb, (enum os_thread_kind)k, getpid(), why, why_len);
	for (int k = 0; !err && k < OS_THREAD_KINDS; k++) {
		err = probe(sb, (enum os_thread_kind)k);
		if (err)
			set_why(why, why_len, "installing the %s thread's filter: %s",
				os_thread_kind_name((enum os_thread_kind)k), strerror(-err));
	}
	if (err) {
		os_sandbox_free(sb);
		return err;
	}
	*out = sb;
	return 0;
}

void os_sandbox_size(const struct os_sandbox *sb, enum os_thread_kind kind,
		     struct os_sandbox_size *size)
{
	*size = sb && kind < OS_THREAD_KINDS ? sb->size[kind] : (struct os_sandbox_size){ 0 };
}
