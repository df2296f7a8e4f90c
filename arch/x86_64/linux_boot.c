/* SPDX-License-Identifier: MIT */
/*
 * Linux x86 boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst):
 * the kernel's segments at their physical addresses, a zero page with the
 * setup header, e820, command line and initrd, RSI pointing at it, long
 * mode with the low memory identity-mapped. Or, for an ELF with a PVH note,
 * the PVH entry: 32-bit protected mode, EBX pointing at hvm_start_info.
 * ACPI and MP tables describe the CPUs, interrupt controllers, power/reset
 * registers and virtio windows either way.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/linux_boot.h"
#include "utils.h"

/* Copy the kernel's segments; returns the end of the highest one. */
static int place_kernel(struct vm *vm, const struct kernel_image *k,
			uint64_t *kernel_end, char *why, size_t len)
{
	*kernel_end = 0;
	for (int i = 0; i < k->nr_segments; i++) {
		const struct boot_segment *s = &k->segments[i];
		uint8_t *dst = vm_gpa_to_hva(vm, s->gpa, s->mem_size);

		/* Below 1 MiB live the boot tables; no --mem moves those. */
		if (s->gpa < X86_HIGH_MEMORY_START)
			return fail_why(ERANGE, why, len,
					"kernel segment at 0x%llx is below 1 MiB, where the boot tables and BIOS area are; link the kernel at 0x100000 or above",
					(unsigned long long)s->gpa);
		/* The hole holds devices; no --mem puts RAM there either. */
		if (s->gpa < X86_MMIO_HOLE_END && s->gpa + s->mem_size > X86_MMIO_HOLE_START)
			return fail_why(ERANGE, why, len,
					"kernel segment at 0x%llx (%llu KiB) overlaps the device area at 0x%llx-0x%llx, which is not RAM; link the kernel elsewhere",
					(unsigned long long)s->gpa,
					(unsigned long long)(s->mem_size >> 10),
					X86_MMIO_HOLE_START, X86_MMIO_HOLE_END - 1);
		if (!dst)
			return fail_why(ERANGE, why, len,
					"kernel segment at 0x%llx (%llu KiB) is outside guest RAM; try more --mem",
					(unsigned long long)s->gpa,
					(unsigned long long)(s->mem_size >> 10));
		memcpy(dst, s->data, s->file_size);
		memset(dst + s->file_size, 0, s->mem_size - s->file_size);
		*kernel_end = MAX(*kernel_end, s->gpa + s->mem_size);
	}
	return 0;
}

static int place_cmdline(struct vm *vm, const struct kernel_image *k,
			 const char *cmdline, char *why, size_t len)
{
	size_t n = strlen(cmdline);
	/* ELF vmlinux carries no limit; Linux x86 takes 2048 with the NUL. */
	size_t max = k->setup_header ? k->cmdline_size : 2047;

	if (n > max || n + 1 > X86_CMDLINE_MAX)
		return fail_why(E2BIG, why, len, "--cmdline is %zu bytes; this kernel takes at most %zu",
				n, max);
	return vm_write_guest(vm, X86_CMDLINE_ADDR, cmdline, n + 1);
}

static int place_initrd(struct vm *vm, const struct x86_linux_boot *b,
			uint64_t kernel_end, uint64_t *gpa, char *why, size_t len)
{
	uint32_t addr_max = b->kernel->setup_header ? b->kernel->initrd_addr_max : 0x7fffffff;
	int err;

	*gpa = 0;
	if (!b->initrd)
		return 0;
	err = x86_place_initrd(b->platform.ram_size, b->initrd_len, addr_max,
			       kernel_end, gpa);
	if (err)
		return fail_why(-err, why, len,
				"initrd (%zu MiB) does not fit in guest RAM above the kernel; try more --mem",
				b->initrd_len >> 20);
	return vm_write_guest(vm, *gpa, b->initrd, b->initrd_len);
}

static int place_tables(struct vm *vm, const struct x86_platform *p,
			uint64_t *rsdp, char *why, size_t len)
{
	uint64_t acpi_len = X86_RESET_VECTOR_ADDR - X86_ACPI_RSDP_ADDR;
	void *acpi = vm_gpa_to_hva(vm, X86_ACPI_RSDP_ADDR, acpi_len);
	void *mp = vm_gpa_to_hva(vm, X86_MPTABLE_ADDR, X86_MPTABLE_MAX_SIZE);
	int err;

	if (!acpi || !mp)
		return fail_why(ERANGE, why, len, "guest RAM does not cover the BIOS area");
	err = acpi_build_tables(acpi, acpi_len, X86_ACPI_RSDP_ADDR, p, rsdp);
	if (err < 0)
		return fail_why(-err, why, len, "cannot build ACPI tables: %s", strerror(-err));
	err = mptable_build(mp, X86_MPTABLE_MAX_SIZE, X86_MPTABLE_ADDR, p->nr_cpus);
	if (err < 0)
		return fail_why(-err, why, len, "cannot build the MP table: %s", strerror(-err));
	return 0;
}

/*
 * The code at the reset vector, run in real mode at F000:FFF0. Linux ends
 * up there when every other reboot method had no effect; on hardware-reduced
 * ACPI with EFI support built in, that is its default path (it picks the EFI
 * reset, which without EFI falls through to the BIOS restart). A BIOS would
 * start over; vibevmm's "firmware" pulses the reset line through the i8042
 * instead, which ends the VM as a reboot.
 */
static const uint8_t reset_stub[] = {
	0xfa,                   /* cli */
	0xb0, 0xfe,             /* mov $0xfe, %al: pulse the reset line */
	0xe6, X86_I8042_PORT,   /* out %al, $0x64 */
	0xf4,                   /* 1: hlt */
	0xeb, 0xfd,             /* jmp 1b */
};

static int place_reset_stub(struct vm *vm, char *why, size_t len)
{
	_Static_assert(sizeof(reset_stub) <= X86_BIOS_END - X86_RESET_VECTOR_ADDR,
		       "the reset stub must fit below 1 MiB");
	if (vm_write_guest(vm, X86_RESET_VECTOR_ADDR, reset_stub, sizeof(reset_stub)))
		return fail_why(ERANGE, why, len, "guest RAM does not cover the reset vector");
	return 0;
}

/* Zero page and long mode at the 64-bit entry. */
static int enter_linux64(struct vm *vm, const struct x86_linux_boot *b,
			 const struct x86_zero_page_desc *zp, struct regs *regs,
			 char *why, size_t why_len)
{
	void *zero_page = vm_gpa_to_hva(vm, X86_ZERO_PAGE_ADDR, X86_ZERO_PAGE_SIZE);
	int err;

	if (!zero_page)
		return fail_why(ERANGE, why, why_len, "guest RAM does not cover the zero page");
	err = x86_build_zero_page(zero_page, zp);
	if (err)
		return fail_why(-err, why, why_len, "cannot build the zero page: %s", strerror(-err));
	/* Linux sets up its own stack; one below the zero page is harmless. */
	x86_regs_long_mode(regs, b->kernel->entry, X86_ZERO_PAGE_ADDR);
	regs->rsi = X86_ZERO_PAGE_ADDR;
	return 0;
}

/* hvm_start_info and 32-bit protected mode at the PVH entry. */
static int enter_pvh(struct vm *vm, const struct x86_linux_boot *b,
		     const struct x86_zero_page_desc *zp, struct regs *regs,
		     char *why, size_t why_len)
{
	const struct x86_pvh_desc pd = {
		.cmdline_gpa = zp->cmdline_gpa,
		.initrd_gpa = zp->initrd_gpa,
		.initrd_size = zp->initrd_size,
		.rsdp_gpa = zp->rsdp_gpa,
		.ram_size = zp->ram_size,
	};
	void *info = vm_gpa_to_hva(vm, X86_PVH_INFO_ADDR, X86_PVH_INFO_SIZE);
	int err;

	if (!info)
		return fail_why(ERANGE, why, why_len, "guest RAM does not cover the PVH start info");
	err = x86_build_pvh_start_info(info, X86_PVH_INFO_SIZE, X86_PVH_INFO_ADDR, &pd);
	if (err)
		return fail_why(-err, why, why_len, "cannot build the PVH start info: %s",
				strerror(-err));
	x86_regs_pvh(regs, b->kernel->pvh_entry, X86_PVH_INFO_ADDR);
	return 0;
}

int x86_boot_linux(struct vm *vm, struct vcpu *bsp,
		   const struct x86_linux_boot *b, char *why, size_t why_len)
{
	const struct kernel_image *k = b->kernel;
	struct x86_zero_page_desc zp = {
		.setup_header = k->setup_header,
		.setup_header_len = k->setup_header_len,
		.cmdline_gpa = X86_CMDLINE_ADDR,
		.cmdline_len = (uint32_t)strlen(b->cmdline),
		.initrd_size = b->initrd ? b->initrd_len : 0,
		.ram_size = b->platform.ram_size,
	};
	int pvh = k->format == KERNEL_FORMAT_ELF_PVH && k->pvh_entry && !b->no_pvh;
	uint64_t kernel_end;
	struct regs regs;
	int err;

	if ((err = place_kernel(vm, k, &kernel_end, why, why_len)) ||
	    (err = place_cmdline(vm, k, b->cmdline, why, why_len)) ||
	    (err = place_initrd(vm, b, kernel_end, &zp.initrd_gpa, why, why_len)) ||
	    (err = place_tables(vm, &b->platform, &zp.rsdp_gpa, why, why_len)) ||
	    (err = place_reset_stub(vm, why, why_len)))
		return err;
	err = x86_setup_boot_tables(vm);
	if (!err)
		err = vcpu_get_regs(bsp, &regs);
	if (err)
		return fail_why(-err, why, why_len, "cannot set up the boot CPU: %s", strerror(-err));
	err = pvh ? enter_pvh(vm, b, &zp, &regs, why, why_len)
		  : enter_linux64(vm, b, &zp, &regs, why, why_len);
	if (err)
		return err;
	err = vcpu_set_regs(bsp, &regs);
	if (err)
		return fail_why(-err, why, why_len, "cannot set boot CPU registers: %s", strerror(-err));
	return 0;
}
