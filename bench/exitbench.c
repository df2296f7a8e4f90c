/* SPDX-License-Identifier: MIT */
/*
 * exitbench: the cost of one guest exit, through libvibevmm and through a
 * bare KVM_RUN loop (raw ioctls, nothing else: the floor).
 *
 *   exitbench lib|bare GUEST N
 *
 * GUEST is build/bench/exits64.bin (bench/guests/exits64.S). For each of
 * the two phases (N port-I/O writes to port 0x4f0, then N 4-byte MMIO writes
 * to 0xc0000000) a fresh VM runs the guest with its parameter block patched;
 * the time from the first guest entry to the exit-port write (one more
 * exit) is measured with CLOCK_MONOTONIC. Output, one line per phase:
 *
 *   exitbench mode=lib kind=pio n=N exits=E ns=TOTAL ns_per_exit=X
 *
 * lib: vm_create, vm_alloc_memory, x86_setup_boot_tables, do-nothing PIO and
 * MMIO devices registered with vm_register_device, exit_port_create(0xf4),
 * and vcpu_run() in a loop on this thread (each PIO/MMIO exit is decoded
 * and dispatched to the device by the library before vcpu_run returns).
 * bare: /dev/kvm, KVM_CREATE_VM, one memory slot, CPUID, long-mode sregs set
 * here, and `while (ioctl(KVM_RUN) == 0) switch (run->exit_reason)`.
 * Exit status 0, 77 when KVM is unusable, 1 on any other failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <vm.h>

#define GUEST_ADDR 0x100000ULL
#define GUEST_MEM (4ULL << 20)
#define GUEST_STACK 0x80000ULL
#define NULL_PORT 0x4f0
#define NULL_MMIO 0xc0000000ULL
#define EXIT_PORT 0xf4

static const char MAGIC[8] = { 'V', 'B', 'P', 'A', 'R', 'A', 'M', '1' };

struct params {
	char magic[8];
	uint32_t hello, pio_n, mmio_n, pad;
};

static uint8_t *guest;
static size_t guest_len;

static int fail(const char *what)
{
	fprintf(stderr, "exitbench: %s: %s\n", what, strerror(errno));
	return -1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A copy of the guest with its parameter block set. */
static uint8_t *patched_guest(uint32_t pio_n, uint32_t mmio_n)
{
	uint8_t *g = malloc(guest_len);
	struct params p = { .pio_n = pio_n, .mmio_n = mmio_n };

	if (!g)
		return NULL;
	memcpy(g, guest, guest_len);
	for (size_t off = 0; off + sizeof(p) <= guest_len; off += 8) {
		if (!memcmp(g + off, MAGIC, sizeof(MAGIC))) {
			memcpy(p.magic, MAGIC, sizeof(MAGIC));
			memcpy(g + off, &p, sizeof(p));
			return g;
		}
	}
	free(g);
	errno = EINVAL;
	return NULL;
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

static struct device *null_device(const char *name, enum device_space space,
				  uint64_t base, uint64_t size)
{
	struct device *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->name = name;
	d->space = space;
	d->base = base;
	d->size = size;
	d->read = null_read;
	d->write = null_write;
	d->destroy = (void (*)(struct device *))free;
	return d;
}

static int run_lib(const uint8_t *img, uint64_t *ns, long *exits)
{
	struct vm *vm = vm_create();
	struct vcpu *vcpu;
	struct regs regs;
	uint64_t t0;
	int r, ret = -1;

	if (!vm)
		return fail("vm_create");
	if (vm_alloc_memory(vm, 0, GUEST_MEM) || x86_setup_boot_tables(vm) ||
	    vm_write_guest(vm, GUEST_ADDR, img, guest_len)) {
		fprintf(stderr, "exitbench: cannot set up guest memory\n");
		goto out;
	}
	if (vm_register_device(vm, null_device("null-pio", DEVICE_PIO, NULL_PORT, 1)) ||
	    vm_register_device(vm, null_device("null-mmio", DEVICE_MMIO, NULL_MMIO, 0x1000)) ||
	    vm_register_device(vm, exit_port_create(EXIT_PORT))) {
		fprintf(stderr, "exitbench: cannot register devices\n");
		goto out;
	}
	vcpu = vm_create_vcpu(vm, 0);
	if (!vcpu || vcpu_get_regs(vcpu, &regs)) {
		fail("vm_create_vcpu");
		goto out;
	}
	x86_regs_long_mode(&regs, GUEST_ADDR, GUEST_STACK);
	if (vcpu_set_regs(vcpu, &regs)) {
		fprintf(stderr, "exitbench: cannot set registers\n");
		goto out;
	}
	*exits = 0;
	t0 = now_ns();
	for (;;) {
		r = vcpu_run(vcpu);
		if (r == VCPU_EXIT_IO || r == VCPU_EXIT_MMIO || r == VCPU_EXIT_INTERRUPTED) {
			(*exits)++;
			continue;
		}
		break;
	}
	*ns = now_ns() - t0;
	(*exits)++; /* the exit-port write */
	if (r != VCPU_EXIT_GUEST_EXIT) {
		fprintf(stderr, "exitbench: guest ended with %s (%d)\n",
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

#define PML4 0x1000ULL
#define PDPT 0x2000ULL
#define PD0 0x3000ULL /* four page directories: 4 GiB in 2 MiB pages */
#define GDT 0x8000ULL

static void bare_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

static int bare_setup(int vm_fd, int vcpu_fd, int sys_fd, uint8_t *mem)
{
	uint64_t *pml4 = (uint64_t *)(mem + PML4), *pdpt = (uint64_t *)(mem + PDPT);
	uint64_t *gdt = (uint64_t *)(mem + GDT);
	struct kvm_cpuid2 *cpuid;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int nent = 256;

	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0 && errno != ENOTTY &&
	    errno != EINVAL)
		return fail("KVM_SET_TSS_ADDR");
	/* CPUID as KVM offers it (long mode must be visible to the guest). */
	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + (size_t)nent * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return fail("calloc");
		cpuid->nent = (uint32_t)nent;
		if (ioctl(sys_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		free(cpuid);
		if (errno != E2BIG || nent > 4096)
			return fail("KVM_GET_SUPPORTED_CPUID");
		nent *= 2;
	}
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0) {
		free(cpuid);
		return fail("KVM_SET_CPUID2");
	}
	free(cpuid);

	/* Identity map of the low 4 GiB, 2 MiB pages. */
	pml4[0] = PDPT | 3;
	for (uint64_t i = 0; i < 4; i++) {
		uint64_t *pd = (uint64_t *)(mem + PD0 + i * 0x1000);

		pdpt[i] = (PD0 + i * 0x1000) | 3;
		for (uint64_t j = 0; j < 512; j++)
			pd[j] = ((i << 30) | (j << 21)) | 0x83; /* P, RW, PS */
	}
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffULL; /* 0x10: 64-bit code */
	gdt[3] = 0x00cf93000000ffffULL; /* 0x18: data */

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return fail("KVM_GET_SREGS");
	bare_segment(&sregs.cs, 0x10, 0xb, 1);
	bare_segment(&sregs.ds, 0x18, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = GDT;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr3 = PML4;
	sregs.cr4 = 1u << 5;                      /* PAE */
	sregs.cr0 = 0x80050033;                   /* PG WP NE ET MP PE */
	sregs.efer = (1u << 8) | (1u << 10);      /* LME LMA */
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return fail("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_ADDR;
	regs.rsp = GUEST_STACK;
	regs.rflags = 2;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return fail("KVM_SET_REGS");
	return 0;
}

static int run_bare(const uint8_t *img, uint64_t *ns, long *exits)
{
	int sys_fd = -1, vm_fd = -1, vcpu_fd = -1, ret = -1;
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
	memcpy(mem + GUEST_ADDR, img, guest_len);
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
	if (bare_setup(vm_fd, vcpu_fd, sys_fd, mem))
		goto out;

	*exits = 0;
	t0 = now_ns();
	for (;;) {
		if (ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fail("KVM_RUN");
			goto out;
		}
		(*exits)++;
		if (run->exit_reason == KVM_EXIT_IO) {
			if (run->io.port == EXIT_PORT)
				break;
			continue; /* the null port (nothing to do) */
		}
		if (run->exit_reason == KVM_EXIT_MMIO)
			continue; /* the null MMIO page (nothing to do) */
		fprintf(stderr, "exitbench: bare guest stopped: exit_reason %u\n",
			run->exit_reason);
		goto out;
	}
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

static int read_guest(const char *path)
{
	FILE *f = fopen(path, "rb");
	long len;

	if (!f)
		return fail(path);
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) <= 0 ||
	    (uint64_t)len > GUEST_MEM - GUEST_ADDR || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		fprintf(stderr, "exitbench: %s: bad size\n", path);
		return -1;
	}
	guest_len = (size_t)len;
	guest = malloc(guest_len);
	if (!guest || fread(guest, 1, guest_len, f) != guest_len) {
		fclose(f);
		return fail(path);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const kinds[] = { "pio", "mmio" };
	char *end;
	unsigned long n;
	int lib;

	if (argc != 4 || (strcmp(argv[1], "lib") && strcmp(argv[1], "bare"))) {
		fprintf(stderr, "usage: exitbench lib|bare GUEST N\n");
		return 1;
	}
	lib = !strcmp(argv[1], "lib");
	n = strtoul(argv[3], &end, 0);
	if (*end || !n || n > 0xffffffffUL) {
		fprintf(stderr, "exitbench: bad N '%s'\n", argv[3]);
		return 1;
	}
	if (read_guest(argv[2]))
		return 1;
	if (lib) {
		int err = hypervisor_init();

		if (err) {
			fprintf(stderr, "exitbench: %s\n", hypervisor_strerror(err));
			return 77;
		}
	} else if (access("/dev/kvm", R_OK | W_OK)) {
		fail("/dev/kvm");
		return 77;
	}
	for (int k = 0; k < 2; k++) {
		uint8_t *img = patched_guest(k == 0 ? (uint32_t)n : 0, k == 1 ? (uint32_t)n : 0);
		uint64_t ns = 0;
		long exits = 0;
		int r;

		if (!img) {
			fprintf(stderr, "exitbench: no parameter block in %s\n", argv[2]);
			return 1;
		}
		r = lib ? run_lib(img, &ns, &exits) : run_bare(img, &ns, &exits);
		free(img);
		if (r == -2)
			return 77;
		if (r)
			return 1;
		printf("exitbench mode=%s kind=%s n=%lu exits=%ld ns=%llu ns_per_exit=%.1f\n",
		       argv[1], kinds[k], n, exits, (unsigned long long)ns,
		       (double)ns / (double)exits);
		fflush(stdout);
	}
	free(guest);
	return 0;
}
