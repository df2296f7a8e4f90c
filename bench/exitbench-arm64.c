/* SPDX-License-Identifier: MIT */
/*
 * exitbench-arm64: the cost of one MMIO exit on arm64, through libvibevmm
 * and through a bare KVM_RUN loop (raw ioctls, nothing else: the floor).
 * The arm64 sibling of bench/exitbench.c (arm64 has no port I/O), built
 * with the cross compiler against build/arm64/lib/libvibevmm.a and run
 * inside the arm64 test host (bench/arm64-inside.sh).
 *
 *   exitbench-arm64 lib|bare N
 *
 * The guest (below, copied to ARM64_RAW_DEFAULT_ADDR) does N 4-byte stores
 * to NULL_MMIO, an address no device of the layout uses, then one to the
 * exit register (ARM64_EXIT_ADDR). A fresh VM per run; the time from the
 * first guest entry to the exit-register store (one more exit) is measured
 * with CLOCK_MONOTONIC. Output:
 *
 *   exitbench mode=lib kind=mmio n=N exits=E ns=TOTAL ns_per_exit=X
 *
 * lib: vm_create, vm_alloc_memory, vm_write_guest, a do-nothing MMIO device
 * registered with vm_register_device, exit_mmio_create(ARM64_EXIT_ADDR),
 * vCPU registers through vcpu_set_regs, and vcpu_run() in a loop on this
 * thread (each exit decoded and dispatched to the device by the library
 * before vcpu_run returns).
 * bare: /dev/kvm, KVM_CREATE_VM, one memory slot, KVM_ARM_VCPU_INIT with
 * the preferred target, PC and x0-x2 through KVM_SET_ONE_REG, and
 * `while (ioctl(KVM_RUN) == 0)`, checking only the exit address.
 * Exit status 0, 77 when KVM is unusable, 1 on any other failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <arch_arm64.h>
#include <vm.h>

#include "arch/arm64/layout.h"

#define GUEST_MEM (4ULL << 20)
#define GUEST_ADDR ARM64_RAW_DEFAULT_ADDR
/* In the MMIO window, between the platform devices and the virtio slots. */
#define NULL_MMIO 0xc0000000ULL

/*
 * The guest: x0 = N, x1 = NULL_MMIO, x2 = ARM64_EXIT_ADDR. N stores of w0
 * to [x1], then 0 to the exit register. Position independent.
 */
__asm__(".pushsection .rodata\n"
	".global exitbench_guest_start, exitbench_guest_end\n"
	".balign 4\n"
	"exitbench_guest_start:\n"
	"	cbz x0, 2f\n"
	"1:	str w0, [x1]\n"
	"	subs x0, x0, #1\n"
	"	b.ne 1b\n"
	"2:	str wzr, [x2]\n"
	"	b .\n"
	"exitbench_guest_end:\n"
	".popsection\n");
extern const unsigned char exitbench_guest_start[], exitbench_guest_end[];

static size_t guest_len(void)
{
	return (size_t)(exitbench_guest_end - exitbench_guest_start);
}

static int fail(const char *what)
{
	fprintf(stderr, "exitbench-arm64: %s: %s\n", what, strerror(errno));
	return -1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- through libvibevmm ---- */

static int null_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	(void)dev; (void)offset; (void)data; (void)size;
	return 0;
}

static int null_read(struct device *dev, uint64_t offset, void *data, size_t size)
{
	(void)dev; (void)offset;
	memset(data, 0, size);
	return 0;
}

static struct device *null_device(void)
{
	struct device *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->name = "null-mmio";
	d->space = DEVICE_MMIO;
	d->base = NULL_MMIO;
	d->size = 0x1000;
	d->read = null_read;
	d->write = null_write;
	d->destroy = (void (*)(struct device *))free;
	return d;
}

static int lib_setup(struct vm *vm, uint64_t n, struct vcpu **out)
{
	struct vcpu *vcpu;
	struct regs regs;

	if (vm_alloc_memory(vm, 0, GUEST_MEM) ||
	    vm_write_guest(vm, GUEST_ADDR, exitbench_guest_start, guest_len())) {
		fprintf(stderr, "exitbench-arm64: cannot set up guest memory\n");
		return -1;
	}
	if (vm_register_device(vm, null_device()) ||
	    vm_register_device(vm, exit_mmio_create(ARM64_EXIT_ADDR))) {
		fprintf(stderr, "exitbench-arm64: cannot register devices\n");
		return -1;
	}
	vcpu = vm_create_vcpu(vm, 0);
	if (!vcpu || vcpu_get_regs(vcpu, &regs))
		return fail("vm_create_vcpu");
	memset(regs.x, 0, sizeof(regs.x));
	regs.x[0] = n;
	regs.x[1] = NULL_MMIO;
	regs.x[2] = ARM64_EXIT_ADDR;
	regs.pc = GUEST_ADDR;
	regs.pstate = ARM64_PSTATE_EL1H_DAIF;
	if (vcpu_set_regs(vcpu, &regs)) {
		fprintf(stderr, "exitbench-arm64: cannot set registers\n");
		return -1;
	}
	*out = vcpu;
	return 0;
}

static int run_lib(uint64_t n, uint64_t *ns, long *exits)
{
	struct vm *vm = vm_create();
	struct vcpu *vcpu = NULL;
	uint64_t t0;
	int r, ret = -1;

	if (!vm)
		return fail("vm_create");
	if (lib_setup(vm, n, &vcpu))
		goto out;
	*exits = 0;
	t0 = now_ns();
	for (;;) {
		r = vcpu_run(vcpu);
		if (r == VCPU_EXIT_MMIO) {
			(*exits)++;
			continue;
		}
		if (r == VCPU_EXIT_INTERRUPTED)
			continue;
		break;
	}
	*ns = now_ns() - t0;
	(*exits)++; /* the exit-register store */
	if (r != VCPU_EXIT_GUEST_EXIT) {
		fprintf(stderr, "exitbench-arm64: guest ended with %s (%d)\n",
			r > 0 ? vcpu_exit_reason_name(r) : strerror(-r), r);
		vcpu_dump(vcpu, STDERR_FILENO);
		goto out;
	}
	ret = 0;
out:
	vm_destroy(vm);
	return ret;
}

/* ---- bare KVM_RUN loop ---- */

#define CORE_REG(field)                                                        \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |                 \
	 (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))

static int set_reg(int vcpu_fd, uint64_t id, uint64_t value)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&value };

	return ioctl(vcpu_fd, KVM_SET_ONE_REG, &reg);
}

/* The vCPU at GUEST_ADDR with x0-x2 set (the reset state is EL1h, DAIF masked). */
static int bare_vcpu_setup(int vm_fd, int vcpu_fd, uint64_t n)
{
	struct kvm_vcpu_init init;

	if (ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		return fail("KVM_ARM_PREFERRED_TARGET");
	if (ioctl(vcpu_fd, KVM_ARM_VCPU_INIT, &init) < 0)
		return fail("KVM_ARM_VCPU_INIT");
	if (set_reg(vcpu_fd, CORE_REG(regs.pc), GUEST_ADDR) < 0 ||
	    set_reg(vcpu_fd, CORE_REG(regs.regs[0]), n) < 0 ||
	    set_reg(vcpu_fd, CORE_REG(regs.regs[1]), NULL_MMIO) < 0 ||
	    set_reg(vcpu_fd, CORE_REG(regs.regs[2]), ARM64_EXIT_ADDR) < 0)
		return fail("KVM_SET_ONE_REG");
	return 0;
}

/* KVM_RUN until the exit-register store; 0, or -1 on anything else. */
static int bare_loop(int vcpu_fd, struct kvm_run *run, long *exits)
{
	*exits = 0;
	for (;;) {
		if (ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return fail("KVM_RUN");
		}
		(*exits)++;
		if (run->exit_reason != KVM_EXIT_MMIO) {
			fprintf(stderr, "exitbench-arm64: bare guest stopped: exit_reason %u\n",
				run->exit_reason);
			return -1;
		}
		if (run->mmio.phys_addr == ARM64_EXIT_ADDR)
			return 0;
		/* the null MMIO page: nothing to do */
	}
}

static int run_bare(uint64_t n, uint64_t *ns, long *exits)
{
	int sys_fd, vm_fd = -1, vcpu_fd = -1, ret = -1;
	struct kvm_run *run = MAP_FAILED;
	uint8_t *mem = MAP_FAILED;
	long run_size = 0;
	uint64_t t0;

	sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (sys_fd < 0) {
		fail("/dev/kvm");
		return -2;
	}
	vm_fd = ioctl(sys_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0) {
		fail("KVM_CREATE_VM");
		goto out;
	}
	mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		fail("mmap guest memory");
		goto out;
	}
	memcpy(mem + GUEST_ADDR, exitbench_guest_start, guest_len());
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_MEM,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		fail("KVM_SET_USER_MEMORY_REGION");
		goto out;
	}
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0) {
		fail("KVM_CREATE_VCPU");
		goto out;
	}
	run_size = ioctl(sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0) {
		fail("KVM_GET_VCPU_MMAP_SIZE");
		goto out;
	}
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED) {
		fail("mmap kvm_run");
		goto out;
	}
	if (bare_vcpu_setup(vm_fd, vcpu_fd, n))
		goto out;
	t0 = now_ns();
	if (bare_loop(vcpu_fd, run, exits))
		goto out;
	*ns = now_ns() - t0;
	ret = 0;
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)run_size);
	if (mem != MAP_FAILED)
		munmap(mem, GUEST_MEM);
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	close(sys_fd);
	return ret;
}

int main(int argc, char **argv)
{
	uint64_t ns = 0;
	long exits = 0;
	unsigned long n;
	char *end;
	int lib, r;

	if (argc != 3 || (strcmp(argv[1], "lib") && strcmp(argv[1], "bare"))) {
		fprintf(stderr, "usage: exitbench-arm64 lib|bare N\n");
		return 1;
	}
	lib = !strcmp(argv[1], "lib");
	n = strtoul(argv[2], &end, 0);
	if (*end || !n || n > 0xffffffffUL) {
		fprintf(stderr, "exitbench-arm64: bad N '%s'\n", argv[2]);
		return 1;
	}
	if (lib) {
		int err = hypervisor_init();

		if (err) {
			fprintf(stderr, "exitbench-arm64: %s\n", hypervisor_strerror(err));
			return 77;
		}
	} else if (access("/dev/kvm", R_OK | W_OK)) {
		fail("/dev/kvm");
		return 77;
	}
	r = lib ? run_lib(n, &ns, &exits) : run_bare(n, &ns, &exits);
	if (r == -2)
		return 77;
	if (r)
		return 1;
	if (exits != (long)n + 1) {
		fprintf(stderr, "exitbench-arm64: %ld exits, expected %lu\n", exits, n + 1);
		return 1;
	}
	printf("exitbench mode=%s kind=mmio n=%lu exits=%ld ns=%llu ns_per_exit=%.1f\n",
	       argv[1], n, exits, (unsigned long long)ns, (double)ns / (double)exits);
	return 0;
}
