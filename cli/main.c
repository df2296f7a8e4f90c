/* SPDX-License-Identifier: MIT */
/* vibevmm: the command line built on libvibevmm. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cli/api/api.h"
#include "cli/console.h"
#include "cli/metrics_out.h"
#include "cli/options.h"
#include "cli/snapshot_cli.h"
#include "cli/virtio_setup.h"
#include "devices.h"
#include "machine.h"
#include "snapshot.h"
#include "utils.h"
#include "vm.h"

#define EXIT_SETUP_ERROR 1
#define EXIT_GUEST_CRASHED 2

struct vmm {
	struct vmm_config cfg;
	struct vm *vm;
	struct console con;
	int stop_signal; /* the signal that stopped the VM, if one did */
	int sig_fd;      /* SIGINT/SIGTERM/SIGHUP, blocked in every thread */
	char why[512];   /* the last start-up error */
	/* Firecracker-style front ends (--api-sock, --config-file) */
	struct fc_config fc;
	struct api_server *api;
	int log_fd;      /* the logger's log_path, or -1 */
	struct metrics_out metrics; /* PUT /metrics' metrics_path (fd -1: none) */
	struct device *disks[CLI_MAX_DISKS]; /* cfg.disks' devices, owned by vm */
	int snap_state_fd, snap_mem_fd; /* --snapshot-on-signal's files, or -1 */
	struct json_t *restored;         /* --restore: what cfg's strings point into */
};

struct vmm;
static int die(struct vmm *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line on stderr, kept for an API client's fault message too; then
 * the start-up error status. */
static int die(struct vmm *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vibevmm: %s\n", v->why);
	return -1;
}

/* Virtio devices are described to the guest with the platform description
 * (ACPI, a device tree), which only Linux boots get. */
static int refuse_unsupported(struct vmm *v)
{
	const struct vmm_config *cfg = &v->cfg;

	if (cfg->binary && (cfg->nr_disks || cfg->nr_nets || cfg->console == CONSOLE_VIRTIO))
		return die(v, "--disk, --net and --console virtio need --kernel (raw binaries get no virtio)");
	return 0;
}

/* The machine with its serial console; the debug console and the exit
 * port are test hooks, on for raw binaries, and for a Linux guest only when
 * asked, so it cannot pick the VMM's exit status by accident. */
static int create_machine(struct vmm *v)
{
	const struct machine_config mc = {
		.nr_cpus = v->cfg.cpus, .ram_size = v->cfg.mem,
		.flags = (v->cfg.kernel ? MACHINE_LINUX : 0) |
			 (v->cfg.binary || v->cfg.debugcon ? MACHINE_DEBUGCON : 0) |
			 (v->cfg.binary || v->cfg.exit_port ? MACHINE_EXIT_DEVICE : 0) |
			 (v->cfg.pci || v->cfg.nr_vfio ? MACHINE_PCI : 0) |
			 (v->cfg.transport == TRANSPORT_PCI ? MACHINE_PCI | MACHINE_VIRTIO_PCI : 0),
		.console_in_fd = STDIN_FILENO, .console_out_fd = STDOUT_FILENO,
	};
	char why[256] = "";
	int err = machine_create(v->vm, &mc, why, sizeof(why));

	if (err)
		return die(v, "%s", *why ? why : strerror(-err));
	/* Assigned devices join before the virtio ones take the bus's slots
	 * (their place then does not depend on how many disks there are). */
	err = v->cfg.nr_vfio ? machine_add_vfio(v->vm, v->cfg.vfio, v->cfg.nr_vfio, why, sizeof(why)) : 0;
	if (err)
		return die(v, "%s", *why ? why : strerror(-err));
	/* Input (a terminal, pipe or file) only when the serial port is the
	 * console, else virtio-console reads it; output works either way. */
	if (v->cfg.console == CONSOLE_SERIAL &&
	    serial8250_attach_input(machine_serial(v->vm), console_filter, &v->con))
		vm_debug(v->vm, "serial input not attached (no stdin)");
	return 0;
}

/* read_file() errors in words; -EINVAL there means "not a regular file". */
static const char *read_error(int err)
{
	return err == -EINVAL ? "not a regular file" : strerror(-err);
}

static int load_binary(struct vmm *v)
{
	char why[256] = "";
	uint8_t *buf;
	size_t len;
	int err = read_file(v->cfg.binary, &buf, &len);

	if (err)
		return die(v, "cannot read --binary %s: %s", v->cfg.binary, read_error(err));
	if (!len) {
		free(buf);
		return die(v, "--binary %s: file is empty", v->cfg.binary);
	}
	err = machine_boot_raw(v->vm, buf, len, v->cfg.entry, why, sizeof(why));
	free(buf);
	if (err)
		return die(v, "--binary %s: %s", v->cfg.binary, *why ? why : strerror(-err));
	return 0;
}

/* The command line the guest gets: the user's, or a default for the
 * chosen console. */
static const char *guest_cmdline(const struct vmm_config *cfg)
{
	if (cfg->cmdline)
		return cfg->cmdline;
	return cfg->console == CONSOLE_VIRTIO ? "console=hvc0" : "console=ttyS0";
}

/* $XDG_CACHE_HOME/vibevmm/kernels, else ~/.cache/vibevmm/kernels; NULL
 * (no cache) with --no-kernel-cache or neither variable set. */
static const char *kernel_cache_dir(const struct vmm_config *cfg, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	if (cfg->no_kernel_cache)
		return NULL;
	if (xdg && *xdg == '/')
		n = snprintf(buf, len, "%s/vibevmm/kernels", xdg);
	else if (home && *home == '/')
		n = snprintf(buf, len, "%s/.cache/vibevmm/kernels", home);
	else
		return NULL;
	return n > 0 && (size_t)n < len ? buf : NULL;
}

static int load_kernel(struct vmm *v)
{
	char cache[PATH_MAX];
	struct machine_linux b = {
		.cmdline = guest_cmdline(&v->cfg),
		.flags = (v->cfg.bzimage_as_is ? MACHINE_BOOT_BZIMAGE_AS_IS : 0) |
			 (v->cfg.no_pvh ? MACHINE_BOOT_NO_PVH : 0),
		.kernel_cache = kernel_cache_dir(&v->cfg, cache, sizeof(cache)),
	};
	uint8_t *kernel = NULL, *initrd = NULL;
	char why[256] = "";
	int err = read_file(v->cfg.kernel, &kernel, &b.kernel_len);

	b.kernel = kernel;
	if (err)
		err = die(v, "cannot read --kernel %s: %s", v->cfg.kernel, read_error(err));
	if (!err && v->cfg.initrd) {
		err = read_file(v->cfg.initrd, &initrd, &b.initrd_len);
		if (err)
			err = die(v, "cannot read --initrd %s: %s", v->cfg.initrd, read_error(err));
		b.initrd = initrd;
	}
	if (!err && cli_add_virtio_devices(v->vm, &v->cfg, &v->con, v->disks, why, sizeof(why)))
		err = die(v, "%s", why);
	if (!err && (err = machine_boot_linux(v->vm, &b, why, sizeof(why))))
		err = die(v, "--kernel %s: %s", v->cfg.kernel, *why ? why : strerror(-err));
	free(kernel);
	free(initrd);
	return err ? -1 : 0;
}

static int load_guest(struct vmm *v)
{
	return v->cfg.kernel ? load_kernel(v) : load_binary(v);
}

/* Before any device or vCPU: every VMM thread starts under its list. */
static int enable_sandbox(struct vmm *v)
{
	int err;

	if (v->cfg.no_seccomp)
		return 0;
	err = vm_enable_seccomp(v->vm);
	if (err == -ENOTSUP)
		return die(v, "cannot sandbox the VMM: no seccomp filters on this kernel (--no-seccomp runs without)");
	if (err)
		return die(v, "cannot sandbox the VMM: installing a seccomp filter failed: %s (--no-seccomp runs without)",
			   strerror(-err));
	return 0;
}

/* The logger's log_path (--config-file, PUT /logger): the VM's log goes
 * there instead of stderr. Opened without blocking, so a FIFO nobody
 * reads yet does not hold the start. */
static int open_log(struct vmm *v)
{
	if (!v->fc.log_path)
		return 0;
	v->log_fd = open(v->fc.log_path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
	if (v->log_fd < 0)
		return die(v, "logger: log_path %s: %s", v->fc.log_path, strerror(errno));
	if (vm_set_log_fd(v->vm, v->log_fd))
		return die(v, "logger: log_path %s: cannot log there", v->fc.log_path);
	return 0;
}

/* The metrics' metrics_path, opened before the sandbox forbids it. */
static int open_metrics(struct vmm *v)
{
	int err;

	if (!v->fc.metrics_path || v->metrics.fd >= 0)
		return 0;
	err = metrics_out_open(&v->metrics, v->fc.metrics_path);
	if (err == -ENXIO)
		return die(v, "metrics: metrics_path %s: a FIFO without a reader", v->fc.metrics_path);
	if (err)
		return die(v, "metrics: metrics_path %s: %s", v->fc.metrics_path, strerror(-err));
	return 0;
}

static void flush_metrics(struct vmm *v)
{
	int err = metrics_out_flush(&v->metrics, v->vm);

	if (err && err != -EBADF)
		vm_warn(v->vm, "metrics: %s: %s%s", v->fc.metrics_path, strerror(-err),
			err == -EAGAIN ? " (the reader is behind: line dropped)" : "");
}

/* PUT /actions FlushMetrics (before InstanceStart too: the file opens
 * then, as Firecracker's does at PUT /metrics) */
static int flush_metrics_now(struct vmm *v, char *err, size_t len)
{
	int e;

	if (open_metrics(v)) {
		snprintf(err, len, "%s", v->why);
		return -EIO;
	}
	if (!v->vm)
		return 0; /* nothing counted yet */
	e = metrics_out_flush(&v->metrics, v->vm);
	if (e)
		snprintf(err, len, "actions: FlushMetrics: %s: %s", v->fc.metrics_path, strerror(-e));
	return e;
}

static int create_vm(struct vmm *v)
{
	int err = hypervisor_init();

	if (err)
		return die(v, "%s", hypervisor_strerror(err));
	v->vm = vm_create();
	if (!v->vm)
		return die(v, "cannot create VM: %s", strerror(errno));
	v->vm->log_level = v->cfg.log_level;
	v->con.vm = v->vm;
	if (open_log(v) || open_metrics(v) || enable_sandbox(v))
		return -1;
	return create_machine(v);
}

/* The VM from v->cfg, ready to start: what every front end shares. */
static int build_vm(struct vmm *v)
{
	return refuse_unsupported(v) || create_vm(v) || load_guest(v) ? -1 : 0;
}

/* Wait for the VM to end, or for SIGINT/SIGTERM/SIGHUP to stop it; API
 * actions (pause, resume, Ctrl+Alt+Del) run here meanwhile. */
static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Firecracker's periodic metrics line: written when due; poll's timeout
 * until the next one (-1: no metrics). */
static int flush_metrics_when_due(struct vmm *v, int64_t *next)
{
	int64_t now = now_ms();

	if (v->metrics.fd < 0)
		return -1;
	if (!*next) {
		*next = now + METRICS_PERIOD_MS;
	} else if (now >= *next) {
		flush_metrics(v);
		*next = now + METRICS_PERIOD_MS;
	}
	return (int)(*next - now);
}

/* --snapshot-on-signal: SIGUSR1 saves the VM (paused meanwhile, unless it
 * was paused already) with the options that rebuild it. */
static void take_snapshot(struct vmm *v)
{
	char why[512] = "", *app = cli_snapshot_describe(&v->cfg);
	bool was_paused = vm_run_state(v->vm) == VM_RUN_PAUSED;
	int err = app ? 0 : -ENOMEM;

	if (!err && !was_paused)
		err = vm_pause(v->vm);
	if (!err) {
		err = vm_snapshot_fds(v->vm, v->snap_state_fd, v->snap_mem_fd, app, strlen(app), why,
				      sizeof(why));
		if (!was_paused)
			vm_resume(v->vm);
	}
	if (err)
		vm_warn(v->vm, "snapshot to %s failed: %s", v->cfg.snapshot_dir,
			*why ? why : strerror(-err));
	else
		vm_info(v->vm, "snapshot saved to %s", v->cfg.snapshot_dir);
	free(app);
}

static void wait_for_vm(struct vmm *v)
{
	int64_t next_flush = 0;
	struct pollfd fds[3] = {
		{ .fd = vm_done_fd(v->vm), .events = POLLIN },
		{ .fd = v->sig_fd, .events = POLLIN },
		{ .fd = api_server_fd(v->api), .events = POLLIN },
	};

	for (;;) {
		struct signalfd_siginfo si;

		if (poll(fds, 3, flush_metrics_when_due(v, &next_flush)) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		if (fds[1].revents && read(v->sig_fd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR1) {
				take_snapshot(v);
				continue;
			}
			vm_info(v->vm, "stopping on signal %u", si.ssi_signo);
			v->stop_signal = (int)si.ssi_signo;
			vm_request_exit(v->vm, VCPU_EXIT_STOPPED, 0);
			break;
		}
		if (fds[2].revents)
			api_run_pending(v->api);
	}
	vm_wait(v->vm);
}

/* A line on stderr after the VM ran: through the VM's stderr stream, so
 * that a stalled reader cannot keep vibevmm from ending. */
static void report(struct vmm *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct vmm *v, const char *fmt, ...)
{
	struct vm_output *err = vm_output_open(v->vm, STDERR_FILENO);
	char line[512];
	va_list ap;
	int n = snprintf(line, sizeof(line), "vibevmm: ");

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = MIN(n, (int)sizeof(line) - 2);
	line[n++] = '\n';
	if (err)
		vm_output_write(err, line, (size_t)n);
	else
		fputs(line, stderr);
}

static int exit_code_for(struct vmm *v, int reason)
{
	struct vcpu *culprit = vm_exit_vcpu(v->vm);

	if (reason < 0) {
		report(v, "VM failed: %s", strerror(-reason));
		return EXIT_SETUP_ERROR;
	}
	switch (reason) {
	case VCPU_EXIT_GUEST_EXIT:
		vm_info(v->vm, "guest exited with status %d", vm_exit_status(v->vm));
		return vm_exit_status(v->vm) & 0xff;
	case VCPU_EXIT_HLT:
		vm_info(v->vm, "guest halted");
		return 0;
	case VCPU_EXIT_POWEROFF:
		vm_info(v->vm, "guest powered off");
		return 0;
	case VCPU_EXIT_RESET:
		vm_info(v->vm, "guest rebooted");
		return 0;
	case VCPU_EXIT_PANIC:
		report(v, "guest panicked");
		return EXIT_GUEST_CRASHED;
	case VCPU_EXIT_STOPPED:
		vm_info(v->vm, "VM stopped%s", v->con.quit_requested ? " (Ctrl-A x)" : "");
		/* As a shell reports a program a signal ended. */
		return v->stop_signal ? 128 + v->stop_signal : 0;
	default:
		report(v, "guest crashed: %s", vcpu_exit_reason_name(reason));
		if (culprit)
			vcpu_dump(culprit, STDERR_FILENO);
		return EXIT_GUEST_CRASHED;
	}
}

/* --stats: the exit histogram, after the vCPUs stopped (exact counts). */
static void print_stats(struct vm *vm)
{
	char buf[16384];
	int n = vm_format_stats(vm, buf, sizeof(buf));

	if (n < 0)
		return;
	fprintf(stderr, "vibevmm: exit statistics:\n%s%s", buf,
		(size_t)n >= sizeof(buf) ? "  (truncated)\n" : "");
}

/* Block the stop signals before any thread exists, so all of them
 * inherit the mask and the signals are only ever read, through the
 * signalfd, by the main thread. */
static int catch_stop_signals(struct vmm *v)
{
	sigset_t stop_signals;

	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	if (v->cfg.snapshot_dir)
		sigaddset(&stop_signals, SIGUSR1);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	v->sig_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
	if (v->sig_fd < 0)
		return die(v, "signalfd: %s", strerror(errno));
	return 0;
}

/* Start the built VM; then the main thread keeps to its allow-list. */
static int start_vm(struct vmm *v)
{
	int err;

	console_open(&v->con, STDIN_FILENO);
	err = vm_start(v->vm);
	if (err) {
		console_restore(&v->con);
		return die(v, "cannot start VM: %s", strerror(-err));
	}
	if (!v->cfg.no_seccomp && (err = vm_seccomp_confine_caller(v->vm))) {
		vm_stop(v->vm);
		console_restore(&v->con);
		return die(v, "cannot sandbox the main thread: %s", strerror(-err));
	}
	return 0;
}

/* Wait for the started VM to end: the exit status. */
static int finish(struct vmm *v)
{
	int reason;

	wait_for_vm(v);
	console_restore(&v->con);
	reason = vm_wait(v->vm);
	if (v->cfg.stats)
		print_stats(v->vm);
	flush_metrics(v); /* the last line: the whole run */
	return exit_code_for(v, reason);
}

/* ---- Firecracker-style: --config-file, --api-sock ---- */

static int load_config_file(struct vmm *v)
{
	char err[512];
	uint8_t *buf;
	size_t len;
	int r = read_file(v->cfg.config_file, &buf, &len);

	if (r)
		return die(v, "cannot read --config-file %s: %s", v->cfg.config_file, read_error(r));
	r = fc_apply_file(&v->fc, (const char *)buf, len, err, sizeof(err));
	free(buf);
	if (r)
		return die(v, "--config-file %s: %s", v->cfg.config_file, err);
	return 0;
}

/* The logger's level names onto --log's levels. */
static void apply_log_level(struct vmm *v)
{
	static const char *const names[] = { "Off", "Error", "Warning", "Info", "Debug", "Trace" };

	for (int i = 0; v->fc.log_level && i < (int)ARRAY_SIZE(names); i++)
		if (!strcmp(v->fc.log_level, names[i]))
			v->cfg.log_level = MIN(i, LOG_DEBUG);
}

/* Build and start the VM the configuration describes, as the command line
 * does; a failed attempt leaves nothing behind, so a client can fix its
 * configuration and try again. */
static int start_from_fc(struct vmm *v)
{
	char err[256];

	if (fc_to_vmm_config(&v->fc, &v->cfg, err, sizeof(err)))
		return die(v, "%s", err);
	apply_log_level(v);
	if (!build_vm(v) && !start_vm(v))
		return 0;
	vm_destroy(v->vm);
	v->vm = NULL;
	if (v->log_fd >= 0)
		close(v->log_fd);
	v->log_fd = -1;
	return -1;
}

/* PATCH /vm: pausing a paused VM (or resuming a running one) is no error. */
static int pause_or_resume(struct vmm *v, bool pause, char *err, size_t len)
{
	int r = pause ? vm_pause(v->vm) : vm_resume(v->vm);

	if (r && r != -EALREADY) {
		snprintf(err, len, "vm: state: cannot %s: %s", pause ? "pause" : "resume", strerror(-r));
		return r;
	}
	api_set_state(v->api, pause ? API_PAUSED : API_RUNNING);
	return 0;
}

/* The VM a snapshot saved, rebuilt from the options kept with it and its
 * state loaded instead of a guest booted, its interfaces on the TAPs the
 * overrides give; not started. `what` names the source in errors. 0, or
 * -1 after saying why. */
static int restore_vm(struct vmm *v, const char *state, const char *mem, const char *what,
		      const struct snap_override *overrides, int nr_overrides)
{
	char why[512] = "";
	size_t len = 0;
	void *app = NULL;
	int err;

	cli_snapshot_free_holder(v->restored); /* an earlier try's */
	v->restored = NULL;
	err = vm_snapshot_app_data(state, &app, &len, why, sizeof(why));
	if (!err)
		err = cli_snapshot_rebuild(app, len, &v->cfg, &v->restored, why, sizeof(why));
	free(app);
	if (!err)
		err = cli_snapshot_override_nets(&v->cfg, overrides, nr_overrides, why, sizeof(why));
	if (!err) /* --disk-override's (the API has PATCH /drives instead) */
		err = cli_snapshot_override_disks(&v->cfg, v->cfg.disk_overrides,
						  v->cfg.nr_disk_overrides, why, sizeof(why));
	if (err)
		return die(v, "%s: %s", what, why);
	if (refuse_unsupported(v) || create_vm(v))
		return -1;
	if (v->cfg.kernel &&
	    cli_add_virtio_devices(v->vm, &v->cfg, &v->con, v->disks, why, sizeof(why)))
		return die(v, "%s", why);
	err = vm_restore(v->vm, state, mem, &(struct vm_restore_options){
				 .read_memory = v->cfg.restore_read_memory }, why, sizeof(why));
	if (err)
		return die(v, "%s: %s", what, why);
	vm_info(v->vm, "restored from %s", what);
	return 0;
}

/* --restore DIR. */
static int run_restored(struct vmm *v)
{
	char state[4096], mem[4096];
	const char *dir = v->cfg.restore_dir;

	if (cli_snapshot_path(state, sizeof(state), dir, SNAPSHOT_STATE_FILE) ||
	    cli_snapshot_path(mem, sizeof(mem), dir, SNAPSHOT_MEM_FILE))
		return die(v, "--restore %s: path too long", dir), EXIT_SETUP_ERROR;
	if (restore_vm(v, state, mem, dir, v->cfg.net_overrides, v->cfg.nr_net_overrides) ||
	    start_vm(v))
		return EXIT_SETUP_ERROR;
	return finish(v);
}

/* PUT /snapshot/load: as --restore, then paused unless resume_vm (the
 * vCPUs are started and stopped again at once: a few instructions run). */
static int load_snapshot(struct vmm *v, const struct api_args *a, char *err, size_t len)
{
	int r = restore_vm(v, a->path, a->mem_path, a->path, a->overrides, a->nr_overrides);

	if (!r)
		r = fc_adopt_restored(&v->fc, &v->cfg);
	if (!r && !(r = start_vm(v)) && !a->resume)
		r = vm_pause(v->vm);
	if (r) {
		snprintf(err, len, "snapshot/load: %s", *v->why ? v->why : strerror(-r));
		vm_destroy(v->vm);
		v->vm = NULL;
		return -EINVAL;
	}
	api_set_state(v->api, a->resume ? API_RUNNING : API_PAUSED);
	return 0;
}

/* PUT /snapshot/create on a paused VM. */
static int create_snapshot(struct vmm *v, const struct api_args *a, char *err, size_t len)
{
	char why[512] = "", *app = cli_snapshot_describe(&v->cfg);
	int r = app ? vm_snapshot(v->vm, a->path, a->mem_path, app, strlen(app), why, sizeof(why)) :
		-ENOMEM;

	free(app);
	if (r)
		snprintf(err, len, "snapshot/create: %s", *why ? why : strerror(-r));
	return r;
}

/* PATCH /drives: the drive's disk takes the new image; GET /vm/config
 * says so after. */
static int patch_drive(struct vmm *v, const struct api_args *args, char *err, size_t len)
{
	int k = fc_drive_disk(&v->fc, args->drive);
	char why[256] = "", *path = strdup(args->path);
	int r;

	if (!path)
		return snprintf(err, len, "drives: out of memory"), -ENOMEM;
	r = virtio_blk_replace_image(v->disks[k], path, why, sizeof(why));
	if (r) {
		free(path);
		return snprintf(err, len, "drives: path_on_host: %s", why), r;
	}
	fc_take_drive_path(&v->fc, args->drive, path);
	v->cfg.disks[k].path = path;
	return 0;
}

/* The API's actions, on the main thread (struct api_ops.action). */
static int api_action(void *opaque, enum api_action a, const struct api_args *args, char *err,
		      size_t len)
{
	struct vmm *v = opaque;

	switch (a) {
	case API_INSTANCE_START:
		if (start_from_fc(v))
			return snprintf(err, len, "InstanceStart: %s", v->why), -EINVAL;
		api_set_state(v->api, API_RUNNING);
		return 0;
	case API_CTRL_ALT_DEL:
		if (machine_send_ctrl_alt_del(v->vm))
			return snprintf(err, len, "SendCtrlAltDel: this machine has no i8042 keyboard"),
			       -ENOTSUP;
		return 0;
	case API_FLUSH_METRICS:
		return flush_metrics_now(v, err, len);
	case API_PAUSE:
	case API_RESUME:
		return pause_or_resume(v, a == API_PAUSE, err, len);
	case API_PATCH_DRIVE:
		return patch_drive(v, args, err, len);
	case API_SNAPSHOT_CREATE:
		return create_snapshot(v, args, err, len);
	case API_SNAPSHOT_LOAD:
		return load_snapshot(v, args, err, len);
	}
	return -EINVAL;
}

/* The API thread, once the VM runs (struct api_ops.confine). */
static int api_confine(void *opaque)
{
	struct vmm *v = opaque;

	return v->cfg.no_seccomp ? 0 : vm_seccomp_confine_api(v->vm);
}

/* Before InstanceStart: serve the API until the VM starts (-1) or a
 * signal ends vibevmm (its exit status). */
static int wait_for_start(struct vmm *v)
{
	struct pollfd fds[2] = {
		{ .fd = v->sig_fd, .events = POLLIN },
		{ .fd = api_server_fd(v->api), .events = POLLIN },
	};

	while (!v->vm) {
		struct signalfd_siginfo si;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			return die(v, "poll: %s", strerror(errno)), EXIT_SETUP_ERROR;
		if (fds[0].revents && read(v->sig_fd, &si, sizeof(si)) == sizeof(si))
			return 128 + (int)si.ssi_signo;
		if (fds[1].revents)
			api_run_pending(v->api);
	}
	return -1;
}

static int run_firecracker_style(struct vmm *v)
{
	const struct api_ops ops = { .action = api_action, .confine = api_confine, .opaque = v };
	char why[512];
	int status;

	if (v->cfg.config_file && load_config_file(v))
		return EXIT_SETUP_ERROR;
	if (v->cfg.api_sock && api_server_start(&v->api, v->cfg.api_sock, &v->fc, &ops, why,
						sizeof(why)))
		return die(v, "%s", why), EXIT_SETUP_ERROR;
	if (v->cfg.config_file) {
		if (start_from_fc(v))
			return EXIT_SETUP_ERROR;
		api_set_state(v->api, API_RUNNING);
	} else if ((status = wait_for_start(v)) >= 0) {
		return status;
	}
	return finish(v);
}

/* --snapshot-on-signal DIR: its files opened now, before the sandbox. */
static int open_snapshot_files(struct vmm *v)
{
	char why[512];

	if (!v->cfg.snapshot_dir)
		return 0;
	if (cli_snapshot_open(v->cfg.snapshot_dir, &v->snap_state_fd, &v->snap_mem_fd, why,
			      sizeof(why)))
		return die(v, "%s", why);
	return 0;
}

/* --metrics-path and --id: as if the API had said them first. */
static int seed_fc_from_flags(struct vmm *v)
{
	if ((v->cfg.metrics_path && !(v->fc.metrics_path = strdup(v->cfg.metrics_path))) ||
	    (v->cfg.id && !(v->fc.instance_id = strdup(v->cfg.id))))
		return die(v, "out of memory");
	return 0;
}

int main(int argc, char **argv)
{
	struct vmm v = { .sig_fd = -1, .log_fd = -1, .metrics.fd = -1, .snap_state_fd = -1,
			 .snap_mem_fd = -1 };
	char err[256];
	int status = EXIT_SETUP_ERROR;

	/* A reader that went away shows as EPIPE where output is written. */
	signal(SIGPIPE, SIG_IGN);
	fc_config_init(&v.fc);
	if (cli_parse(argc, argv, &v.cfg, err, sizeof(err))) {
		fprintf(stderr, "vibevmm: %s\n", err);
		return EXIT_SETUP_ERROR;
	}
	if (v.cfg.help) {
		cli_print_usage(stdout);
		return 0;
	}
	if (v.cfg.version) {
		printf("vibevmm %s\n", VIBEVMM_VERSION);
		return 0;
	}
	if (seed_fc_from_flags(&v) || open_snapshot_files(&v) || catch_stop_signals(&v))
		return EXIT_SETUP_ERROR;
	if (v.cfg.restore_dir)
		status = run_restored(&v);
	else if (v.cfg.api_sock || v.cfg.config_file)
		status = run_firecracker_style(&v);
	else if (!build_vm(&v) && !start_vm(&v))
		status = finish(&v);
	/* The API thread first: it may still be answering a request. */
	api_server_stop(v.api);
	vm_destroy(v.vm);
	fc_config_free(&v.fc);
	if (v.log_fd >= 0)
		close(v.log_fd);
	metrics_out_close(&v.metrics);
	close(v.sig_fd);
	if (v.snap_state_fd >= 0)
		close(v.snap_state_fd);
	if (v.snap_mem_fd >= 0)
		close(v.snap_mem_fd);
	cli_snapshot_free_holder(v.restored);
	return status;
}
