/* SPDX-License-Identifier: MIT */
/* vibevmm: the command line built on libvibevmm. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/linux_boot.h"
#include "boot.h"
#include "cli/console.h"
#include "cli/options.h"
#include "cli/virtio_setup.h"
#include "utils.h"
#include "vm.h"

#define EXIT_SETUP_ERROR 1
#define EXIT_GUEST_CRASHED 2

struct vmm {
	struct vmm_config cfg;
	struct vm *vm;
	struct console con;
	int stop_signal; /* the signal that stopped the VM, if one did */
};

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr, then the start-up error status. */
static int die(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vibevmm: %s\n", line);
	return -1;
}

/* Virtio devices are described to the guest through ACPI, which only
 * Linux boots get. */
static int refuse_unsupported(const struct vmm_config *cfg)
{
	if (cfg->binary && (cfg->nr_disks || cfg->nr_nets || cfg->console == CONSOLE_VIRTIO))
		return die("--disk, --net and --console virtio need --kernel (raw binaries get no virtio)");
	return 0;
}

static int register_or_die(struct vm *vm, struct device *dev, const char *what)
{
	int err = dev ? vm_register_device(vm, dev) : -ENOMEM;

	if (err) {
		if (dev && dev->destroy)
			dev->destroy(dev);
		return die("cannot add %s: %s", what, strerror(-err));
	}
	return 0;
}

static int add_platform_devices(struct vmm *v)
{
	struct device *serial;

	/* Test hooks, on for raw binaries; a Linux guest gets them only when
	 * asked, so it cannot pick the VMM's exit status by accident. */
	if ((v->cfg.binary || v->cfg.debugcon) &&
	    register_or_die(v->vm, debugcon_create(v->vm, X86_DEBUGCON_ADDR, STDOUT_FILENO),
			    "debug console"))
		return -1;
	if ((v->cfg.binary || v->cfg.exit_port) &&
	    register_or_die(v->vm, exit_port_create(X86_EXIT_PORT), "exit port"))
		return -1;
	serial = serial8250_create(v->vm, X86_COM1_PORT, X86_COM1_IRQ, STDIN_FILENO,
				   STDOUT_FILENO);
	if (register_or_die(v->vm, serial, "serial port"))
		return -1;
	/* Input (a terminal, pipe or file) only when the serial port is the
	 * console, else virtio-console reads it; output works either way. */
	if (v->cfg.console == CONSOLE_SERIAL &&
	    serial8250_attach_input(serial, console_filter, &v->con))
		vm_debug(v->vm, "serial input not attached (no stdin)");
	if (!v->cfg.kernel)
		return 0;
	/* Power off / reboot for Linux: ACPI registers and the i8042 reset;
	 * pvpanic tells a guest panic from a reboot. */
	if (register_or_die(v->vm, acpi_pm_create(X86_ACPI_PM_PORT), "ACPI PM port") ||
	    register_or_die(v->vm, i8042_create(), "i8042") ||
	    register_or_die(v->vm, pvpanic_create(X86_PVPANIC_PORT), "pvpanic"))
		return -1;
	return 0;
}

static int start_vcpus_long_mode(struct vmm *v, uint64_t entry)
{
	int err = x86_setup_boot_tables(v->vm);

	if (err)
		return die("cannot write boot page tables: %s", strerror(-err));
	for (int id = 0; id < v->cfg.cpus; id++) {
		struct vcpu *vcpu = vm_create_vcpu(v->vm, id);
		struct regs regs;

		if (!vcpu)
			return die("cannot create vCPU %d: %s", id, strerror(errno));
		err = vcpu_get_regs(vcpu, &regs);
		if (!err) {
			x86_regs_long_mode(&regs, entry, X86_RAW_STACKS_BASE +
					   (uint64_t)(id + 1) * X86_RAW_STACK_SIZE);
			regs.rdi = (uint64_t)id; /* which vCPU am I */
			err = vcpu_set_regs(vcpu, &regs);
		}
		if (err)
			return die("cannot set vCPU %d registers: %s", id, strerror(-err));
	}
	return 0;
}

/* read_file() errors in words; -EINVAL there means "not a regular file". */
static const char *read_error(int err)
{
	return err == -EINVAL ? "not a regular file" : strerror(-err);
}

static int load_binary(struct vmm *v)
{
	uint8_t *buf;
	size_t len;
	int err = read_file(v->cfg.binary, &buf, &len);

	if (err)
		return die("cannot read --binary %s: %s", v->cfg.binary, read_error(err));
	if (!len) {
		free(buf);
		return die("--binary %s: file is empty", v->cfg.binary);
	}
	if (len > MIN(v->cfg.mem, X86_MMIO_HOLE_START) - v->cfg.entry)
		err = -ERANGE;
	else
		err = boot_load_raw(v->vm, v->cfg.entry, buf, len);
	free(buf);
	if (err)
		return die("--binary %s: %zu bytes at 0x%llx do not fit in guest RAM (--mem %llu MiB)",
			   v->cfg.binary, len, (unsigned long long)v->cfg.entry,
			   (unsigned long long)(v->cfg.mem >> 20));
	return start_vcpus_long_mode(v, v->cfg.entry);
}

static int read_kernel(struct vmm *v, struct kernel_image *k, uint8_t **file)
{
	const struct boot_options opts = { .bzimage_as_is = v->cfg.bzimage_as_is };
	size_t len;
	int err = read_file(v->cfg.kernel, file, &len);

	if (err)
		return die("cannot read --kernel %s: %s", v->cfg.kernel, read_error(err));
	if (boot_detect_format(*file, len) == KERNEL_FORMAT_UNKNOWN)
		return die("--kernel %s: not a Linux kernel (want a bzImage or an ELF vmlinux)",
			   v->cfg.kernel);
	err = boot_parse_kernel(*file, len, &opts, k);
	if (err == -ENOTSUP)
		return die("--kernel %s: unsupported %s (old boot protocol, not 64-bit, or unknown compression)",
			   v->cfg.kernel, boot_format_name(boot_detect_format(*file, len)));
	if (err)
		return die("--kernel %s: malformed or truncated %s: %s", v->cfg.kernel,
			   boot_format_name(boot_detect_format(*file, len)), strerror(-err));
	if (k->format == KERNEL_FORMAT_ELF_PVH && !v->cfg.no_pvh)
		vm_info(v->vm, "kernel: %s, PVH entry 0x%llx", boot_format_name(k->format),
			(unsigned long long)k->pvh_entry);
	else
		vm_info(v->vm, "kernel: %s%s, 64-bit entry 0x%llx", boot_format_name(k->format),
			k->decompressed ? " (decompressed on the host)" : "",
			(unsigned long long)k->entry);
	return 0;
}

static int create_vcpus(struct vmm *v)
{
	for (int id = 0; id < v->cfg.cpus; id++)
		if (!vm_create_vcpu(v->vm, id))
			return die("cannot create vCPU %d: %s", id, strerror(errno));
	return 0;
}

/* The command line the guest gets: the user's (or a default for the chosen
 * console), plus the virtio-mmio devices for kernels that read them there. */
static char *guest_cmdline(const struct vmm_config *cfg, const char *extra)
{
	const char *base = cfg->cmdline ? cfg->cmdline
		: cfg->console == CONSOLE_VIRTIO ? "console=hvc0" : "console=ttyS0";
	char *line;

	if (asprintf(&line, "%s%s", base, extra) < 0)
		return NULL;
	return line;
}

static int load_kernel(struct vmm *v)
{
	struct kernel_image k = { 0 };
	struct x86_linux_boot b = {
		.kernel = &k,
		.platform = { .nr_cpus = v->cfg.cpus, .ram_size = v->cfg.mem,
			      .flags = X86_PLATFORM_COM1 | X86_PLATFORM_I8042 |
				       X86_PLATFORM_PVPANIC },
		.no_pvh = v->cfg.no_pvh,
	};
	uint8_t *file = NULL, *initrd = NULL;
	char why[256], extra[1024] = "", *cmdline = NULL;
	int err = read_kernel(v, &k, &file);

	if (!err && v->cfg.initrd) {
		err = read_file(v->cfg.initrd, &initrd, &b.initrd_len);
		if (err)
			err = die("cannot read --initrd %s: %s", v->cfg.initrd, read_error(err));
		b.initrd = initrd;
	}
	if (!err && cli_add_virtio_devices(v->vm, &v->cfg, &v->con, &b.platform,
					   extra, sizeof(extra), why, sizeof(why)))
		err = die("%s", why);
	if (!err && !(b.cmdline = cmdline = guest_cmdline(&v->cfg, extra)))
		err = die("out of memory");
	if (!err)
		err = create_vcpus(v);
	if (!err && x86_boot_linux(v->vm, v->vm->vcpus[0], &b, why, sizeof(why)))
		err = die("cannot boot --kernel %s: %s", v->cfg.kernel, why);
	kernel_image_free(&k);
	free(file);
	free(initrd);
	free(cmdline);
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
		return die("cannot sandbox the VMM: no seccomp filters on this kernel (--no-seccomp runs without)");
	if (err)
		return die("cannot sandbox the VMM: installing a seccomp filter failed: %s (--no-seccomp runs without)",
			   strerror(-err));
	return 0;
}

static int create_vm(struct vmm *v)
{
	int err = hypervisor_init();

	if (err)
		return die("%s", hypervisor_strerror(err));
	v->vm = vm_create();
	if (!v->vm)
		return die("cannot create VM: %s", strerror(errno));
	v->vm->log_level = v->cfg.log_level;
	v->con.vm = v->vm;
	if (enable_sandbox(v))
		return -1;
	/* Linux wants interrupt controllers and a PIT; raw binaries do not,
	 * and without them HLT returns to the VMM. */
	if (v->cfg.kernel && (err = vm_create_irqchip(v->vm)))
		return die("cannot create the interrupt controller: %s", strerror(-err));
	err = x86_alloc_guest_ram(v->vm, v->cfg.mem);
	if (err)
		return die("cannot allocate %llu MiB of guest RAM: %s",
			   (unsigned long long)(v->cfg.mem >> 20), strerror(-err));
	return 0;
}

/* Wait for the VM to end, or for SIGINT/SIGTERM/SIGHUP to stop it. */
static void wait_for_vm(struct vmm *v, int sig_fd)
{
	struct pollfd fds[2] = {
		{ .fd = vm_done_fd(v->vm), .events = POLLIN },
		{ .fd = sig_fd, .events = POLLIN },
	};

	for (;;) {
		struct signalfd_siginfo si;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		if (fds[1].revents && read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
			vm_info(v->vm, "stopping on signal %u", si.ssi_signo);
			v->stop_signal = (int)si.ssi_signo;
			vm_request_exit(v->vm, VCPU_EXIT_STOPPED, 0);
			break;
		}
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

static int run(struct vmm *v)
{
	sigset_t stop_signals;
	int sig_fd, err, reason;

	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	/* Blocked before any thread exists, so all of them inherit it and
	 * the signals are only ever read here, through the signalfd. */
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	sig_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
	if (sig_fd < 0) {
		die("signalfd: %s", strerror(errno));
		return EXIT_SETUP_ERROR;
	}
	console_open(&v->con, STDIN_FILENO);
	err = vm_start(v->vm);
	if (err) {
		console_restore(&v->con);
		close(sig_fd);
		die("cannot start VM: %s", strerror(-err));
		return EXIT_SETUP_ERROR;
	}
	/* From here on: wait, restore the terminal, report, tear down. */
	if (!v->cfg.no_seccomp && (err = vm_seccomp_confine_caller(v->vm))) {
		vm_stop(v->vm);
		console_restore(&v->con);
		close(sig_fd);
		die("cannot sandbox the main thread: %s", strerror(-err));
		return EXIT_SETUP_ERROR;
	}
	wait_for_vm(v, sig_fd);
	console_restore(&v->con);
	close(sig_fd);
	reason = vm_wait(v->vm);
	return exit_code_for(v, reason);
}

int main(int argc, char **argv)
{
	struct vmm v = { 0 };
	char err[256];
	int status = EXIT_SETUP_ERROR;

	/* A reader that went away shows as EPIPE where output is written. */
	signal(SIGPIPE, SIG_IGN);
	if (cli_parse(argc, argv, &v.cfg, err, sizeof(err))) {
		fprintf(stderr, "vibevmm: %s\n", err);
		return EXIT_SETUP_ERROR;
	}
	if (v.cfg.help) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (v.cfg.version) {
		printf("vibevmm %s\n", VIBEVMM_VERSION);
		return 0;
	}
	if (refuse_unsupported(&v.cfg) || create_vm(&v) ||
	    add_platform_devices(&v) || load_guest(&v))
		goto out;
	status = run(&v);
out:
	vm_destroy(v.vm);
	return status;
}
