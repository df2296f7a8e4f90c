/* SPDX-License-Identifier: MIT */
/*
 * arm64-kvm-probe: the arm64 test host's smoke-test program
 * (tests/host/testhost-arm64-smoke.sh cross-builds it static and dynamic).
 *
 * Usage: arm64-kvm-probe TOKEN [MMIO_EXITS]
 *
 * Proves that a program built on the x86 side ran inside and that the KVM
 * there runs guests: prints the token with its zlib CRC-32 (the caller
 * recomputes it, so only a real run can print it), then runs a tiny guest
 * on one vCPU (no vGIC needed) that writes TOKEN's CRC to an MMIO address
 * MMIO_EXITS times (default 1000) and ends with PSCI SYSTEM_OFF, and
 * prints what KVM reported and the cost of an MMIO exit:
 *   PROBE token=T crc32=XXXXXXXX arch=aarch64
 *   KVM api=12 ipa_max=N mmio_exits=N mmio_value=XXXXXXXX system_event=shutdown ns_per_exit=N
 * Exit status 0 when all of that happened, 1 otherwise (with a reason).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <zlib.h>

#define GUEST_RAM_SIZE 0x200000UL
#define GUEST_CODE 0x10000UL
#define GUEST_MMIO 0x90000000UL

/*
 * The guest, copied to GUEST_CODE (position independent): x0 = value,
 * x1 = count; stores x0 to GUEST_MMIO x1 times, then PSCI SYSTEM_OFF.
 */
__asm__(".pushsection .rodata\n"
	".global probe_guest_start, probe_guest_end\n"
	".balign 4\n"
	"probe_guest_start:\n"
	"	movz x2, #0x9000, lsl #16\n"
	"1:	str w0, [x2]\n"
	"	subs x1, x1, #1\n"
	"	b.ne 1b\n"
	"	movz w0, #0x0008\n"
	"	movk w0, #0x8400, lsl #16\n" /* PSCI_0_2_FN_SYSTEM_OFF */
	"	hvc #0\n"
	"	b .\n"
	"probe_guest_end:\n"
	".popsection\n");
extern const unsigned char probe_guest_start[], probe_guest_end[];

#define CORE_REG(field)                                                        \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |                 \
	 (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))

static int fail(const char *what)
{
	fprintf(stderr, "arm64-kvm-probe: %s: %s\n", what, strerror(errno));
	return 1;
}

static int set_reg(int vcpu, uint64_t id, uint64_t value)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&value };

	return ioctl(vcpu, KVM_SET_ONE_REG, &reg);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* The vCPU's state and what its exits said. */
struct probe_run {
	int vcpu;
	struct kvm_run *run;
	unsigned long exits;
	uint32_t value;
	int shutdown;
};

/* KVM_RUN until the guest's SYSTEM_OFF; 0, or 1 on anything unexpected. */
static int run_guest(struct probe_run *p)
{
	for (;;) {
		if (ioctl(p->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			return fail("KVM_RUN");
		}
		switch (p->run->exit_reason) {
		case KVM_EXIT_MMIO:
			if (!p->run->mmio.is_write || p->run->mmio.phys_addr != GUEST_MMIO ||
			    p->run->mmio.len != 4) {
				fprintf(stderr, "arm64-kvm-probe: unexpected MMIO at 0x%llx\n",
					(unsigned long long)p->run->mmio.phys_addr);
				return 1;
			}
			memcpy(&p->value, p->run->mmio.data, sizeof(p->value));
			p->exits++;
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			p->shutdown = p->run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN;
			return p->shutdown ? 0 : 1;
		default:
			fprintf(stderr, "arm64-kvm-probe: unexpected exit reason %u\n",
				p->run->exit_reason);
			return 1;
		}
	}
}

static int kvm_probe(uint32_t value, unsigned long count)
{
	struct kvm_vcpu_init init;
	struct probe_run p = { 0 };
	struct kvm_userspace_memory_region region;
	int kvm, vm, api, ipa, mmap_size;
	void *ram;
	double t0, t1;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("/dev/kvm");
	api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	ipa = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	ram = mmap(NULL, GUEST_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		return fail("mmap guest RAM");
	memcpy((char *)ram + GUEST_CODE, probe_guest_start,
	       (size_t)(probe_guest_end - probe_guest_start));
	region = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_RAM_SIZE,
		.userspace_addr = (uintptr_t)ram,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	p.vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (p.vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		return fail("KVM_ARM_PREFERRED_TARGET");
	init.features[0] |= 1U << KVM_ARM_VCPU_PSCI_0_2;
	if (ioctl(p.vcpu, KVM_ARM_VCPU_INIT, &init) < 0)
		return fail("KVM_ARM_VCPU_INIT");
	mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	p.run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, p.vcpu, 0);
	if (p.run == MAP_FAILED)
		return fail("mmap kvm_run");
	if (set_reg(p.vcpu, CORE_REG(regs.pc), GUEST_CODE) < 0 ||
	    set_reg(p.vcpu, CORE_REG(regs.regs[0]), value) < 0 ||
	    set_reg(p.vcpu, CORE_REG(regs.regs[1]), count) < 0)
		return fail("KVM_SET_ONE_REG");

	t0 = now_ns();
	if (run_guest(&p) != 0)
		return 1;
	t1 = now_ns();
	printf("KVM api=%d ipa_max=%d mmio_exits=%lu mmio_value=%08" PRIx32
	       " system_event=%s ns_per_exit=%.0f\n",
	       api, ipa, p.exits, p.value, p.shutdown ? "shutdown" : "other",
	       (t1 - t0) / (double)p.exits);
	munmap(p.run, (size_t)mmap_size);
	munmap(ram, GUEST_RAM_SIZE);
	close(p.vcpu);
	close(vm);
	close(kvm);
	return p.exits == count && p.value == value ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct utsname u;
	unsigned long count = 1000;
	uint32_t crc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: arm64-kvm-probe TOKEN [MMIO_EXITS]\n");
		return 2;
	}
	if (argc == 3)
		count = strtoul(argv[2], NULL, 0);
	if (count == 0)
		count = 1;
	crc = (uint32_t)crc32(0L, (const Bytef *)argv[1], (uInt)strlen(argv[1]));
	uname(&u);
	printf("PROBE token=%s crc32=%08" PRIx32 " arch=%s\n", argv[1], crc, u.machine);
	fflush(stdout);
	return kvm_probe(crc, count);
}
