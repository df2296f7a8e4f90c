/* SPDX-License-Identifier: MIT */
/* Linux KVM backend: the architecture-neutral part. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/backends.h"
#include "hv/kvm.h"
#include "utils.h"

#define KVM_DEVICE "/dev/kvm"

int kvm_ioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int open_kvm(void)
{
	int fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);
	int version;

	if (fd < 0)
		return -errno;
	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		close(fd);
		return -ENODEV;
	}
	return fd;
}

static int kvm_probe(void)
{
	int fd = open_kvm();

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static void kvm_vm_destroy(struct vm *vm)
{
	struct kvm_vm *k = kvm_of(vm);

	if (!k)
		return;
	kvm_arch_vm_destroy(vm);
	kvm_msi_routes_free(vm);
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	free(k);
	vm->private = vm->vm_handle = NULL;
}

static int kvm_vm_create(struct vm *vm)
{
	struct kvm_vm *k = calloc(1, sizeof(*k));
	int err;

	if (!k)
		return -ENOMEM;
	k->vm_fd = -1;
	vm->private = k;
	k->sys_fd = open_kvm();
	if (k->sys_fd < 0) {
		err = k->sys_fd;
		goto fail;
	}
	err = kvm_ioctl(k->sys_fd, KVM_CREATE_VM,
			(void *)(uintptr_t)kvm_arch_vm_type(k->sys_fd));
	if (err < 0)
		goto fail;
	k->vm_fd = err;
	vm->vm_handle = &k->vm_fd;
	k->run_size = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->run_size < (int)sizeof(struct kvm_run)) {
		err = -ENODEV;
		goto fail;
	}
	err = kvm_arch_vm_init(vm);
	if (err)
		goto fail;
	return 0;
fail:
	kvm_vm_destroy(vm);
	return err;
}

static int kvm_set_memory(struct vm *vm, uint32_t slot, uint64_t gpa,
			  void *hva, uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return kvm_ioctl(kvm_of(vm)->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

static int kvm_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = {
		.irq = kvm_arch_irq_line_number(gsi), .level = level ? 1 : 0,
	};

	return kvm_ioctl(kvm_of(vm)->vm_fd, KVM_IRQ_LINE, &irq);
}

static int kvm_ioeventfd_flags(struct vm *vm, uint64_t addr, uint32_t len, int fd,
			       uint64_t value, uint32_t flags)
{
	struct kvm_ioeventfd e = {
		.addr = addr, .len = len, .fd = fd, .datamatch = value, .flags = flags,
	};
	int err = kvm_ioctl(kvm_of(vm)->vm_fd, KVM_IOEVENTFD, &e);

	return err < 0 ? err : 0;
}

static uint32_t ioeventfd_flags(int pio, int datamatch)
{
	return (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0);
}

static int kvm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, int pio,
			 int fd, int datamatch, uint64_t value)
{
	return kvm_ioeventfd_flags(vm, addr, len, fd, value, ioeventfd_flags(pio, datamatch));
}

static int kvm_ioeventfd_del(struct vm *vm, uint64_t addr, uint32_t len, int pio,
			     int fd, int datamatch, uint64_t value)
{
	return kvm_ioeventfd_flags(vm, addr, len, fd, value,
				   ioeventfd_flags(pio, datamatch) | KVM_IOEVENTFD_FLAG_DEASSIGN);
}

int kvm_irqfd_now(struct vm *vm, uint32_t gsi, int fd)
{
	struct kvm_irqfd i = { .fd = (uint32_t)fd, .gsi = gsi };
	int err = kvm_ioctl(kvm_of(vm)->vm_fd, KVM_IRQFD, &i);

	return err < 0 ? err : 0;
}

static int kvm_irqfd(struct vm *vm, uint32_t gsi, int fd)
{
	int err = kvm_arch_irqfd_later(vm, gsi, fd);

	return err == -EAGAIN ? kvm_irqfd_now(vm, gsi, fd) : err;
}

static void kvm_vcpu_destroy(struct vcpu *vcpu)
{
	struct kvm_vcpu *kv = kvm_vcpu_of(vcpu);

	if (!kv)
		return;
	if (kv->run)
		munmap(kv->run, (size_t)kvm_of(vcpu->vm)->run_size);
	if (kv->fd >= 0)
		close(kv->fd);
	free(kv);
	vcpu->private = vcpu->vcpu_handle = vcpu->run = NULL;
}

static int kvm_vcpu_create(struct vcpu *vcpu)
{
	struct kvm_vm *k = kvm_of(vcpu->vm);
	struct kvm_vcpu *kv = calloc(1, sizeof(*kv));
	void *run;
	int err;

	if (!kv)
		return -ENOMEM;
	vcpu->private = kv;
	kv->fd = kvm_ioctl(k->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)vcpu->vcpu_id);
	if (kv->fd < 0) {
		err = kv->fd;
		goto fail;
	}
	run = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   kv->fd, 0);
	if (run == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	kv->run = run;
	vcpu->run = run;
	vcpu->vcpu_handle = &kv->fd;
	err = kvm_arch_vcpu_init(vcpu);
	if (err)
		goto fail;
	return 0;
fail:
	kvm_vcpu_destroy(vcpu);
	return err;
}

static void decode_io(struct kvm_run *run, struct vcpu_exit *exit)
{
	exit->reason = VCPU_EXIT_IO;
	exit->io.port = run->io.port;
	exit->io.size = run->io.size;
	exit->io.is_write = run->io.direction == KVM_EXIT_IO_OUT;
	exit->io.count = run->io.count;
	exit->io.data = (uint8_t *)run + run->io.data_offset;
}

static void decode_mmio(struct kvm_run *run, struct vcpu_exit *exit)
{
	exit->reason = VCPU_EXIT_MMIO;
	exit->mmio.addr = run->mmio.phys_addr;
	exit->mmio.size = (uint8_t)run->mmio.len;
	exit->mmio.is_write = run->mmio.is_write;
	exit->mmio.data = run->mmio.data;
}

static void decode_internal_error(struct vcpu *vcpu, struct kvm_run *run,
				  struct vcpu_exit *exit)
{
	exit->reason = VCPU_EXIT_INTERNAL_ERROR;
	exit->internal.suberror = run->internal.suberror;
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    (run->emulation_failure.flags &
	     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		uint8_t n = run->emulation_failure.insn_size;
		if (n > sizeof(run->emulation_failure.insn_bytes))
			n = sizeof(run->emulation_failure.insn_bytes);
		memcpy(exit->internal.insn, run->emulation_failure.insn_bytes, n);
		exit->internal.insn_len = n;
	}
	if (!exit->internal.insn_len)
		kvm_arch_fetch_insn(vcpu, exit);
}

static void decode_system_event(struct kvm_run *run, struct vcpu_exit *exit)
{
	switch (run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		exit->reason = VCPU_EXIT_POWEROFF;
		break;
	case KVM_SYSTEM_EVENT_RESET:
		exit->reason = VCPU_EXIT_RESET;
		break;
	case KVM_SYSTEM_EVENT_CRASH:
		exit->reason = VCPU_EXIT_PANIC;
		break;
	default:
		exit->reason = VCPU_EXIT_UNKNOWN;
		exit->unknown.code = KVM_EXIT_SYSTEM_EVENT;
	}
}

static void decode_exit(struct vcpu *vcpu, struct kvm_run *run,
			struct vcpu_exit *exit)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		decode_io(run, exit);
		break;
	case KVM_EXIT_MMIO:
		decode_mmio(run, exit);
		break;
	case KVM_EXIT_HLT:
		exit->reason = VCPU_EXIT_HLT;
		break;
	case KVM_EXIT_SHUTDOWN:
		exit->reason = VCPU_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_INTR:
		exit->reason = VCPU_EXIT_INTERRUPTED;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		decode_internal_error(vcpu, run, exit);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		exit->reason = VCPU_EXIT_FAIL_ENTRY;
		exit->fail_entry.hw_reason = run->fail_entry.hardware_entry_failure_reason;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		decode_system_event(run, exit);
		break;
	default:
		if (kvm_arch_decode_exit(vcpu, exit) != 0) {
			exit->reason = VCPU_EXIT_UNKNOWN;
			exit->unknown.code = run->exit_reason;
		}
	}
}

static int kvm_vcpu_run(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	struct kvm_vcpu *kv = kvm_vcpu_of(vcpu);
	int r = ioctl(kv->fd, KVM_RUN, 0);

	if (r < 0) {
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
		/* Kicked (vm_stop) or a stray signal: not an error. */
		kv->run->immediate_exit = 0;
		exit->reason = VCPU_EXIT_INTERRUPTED;
		return 0;
	}
	decode_exit(vcpu, kv->run, exit);
	return 0;
}

static void kvm_vcpu_kick(struct vcpu *vcpu)
{
	struct kvm_vcpu *kv = kvm_vcpu_of(vcpu);

	__atomic_store_n(&kv->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

static int kvm_get_regs(struct vcpu *vcpu, struct regs *regs)
{
	return kvm_arch_get_regs(vcpu, regs);
}

static int kvm_set_regs(struct vcpu *vcpu, const struct regs *regs)
{
	return kvm_arch_set_regs(vcpu, regs);
}

const struct hypervisor_ops kvm_ops = {
	.name = "kvm",
	.type = HYPERVISOR_KVM,
	.probe = kvm_probe,
	.vm_create = kvm_vm_create,
	.vm_destroy = kvm_vm_destroy,
	.set_memory = kvm_set_memory,
	.create_irqchip = kvm_arch_create_irqchip,
	.irqchip_model = kvm_arch_irqchip_model,
	.vm_finalize = kvm_arch_vm_finalize,
	.irq_line = kvm_irq_line,
	.ioeventfd = kvm_ioeventfd,
	.ioeventfd_del = kvm_ioeventfd_del,
	.irqfd = kvm_irqfd,
	.msi_route = kvm_msi_route,
	.vcpu_create = kvm_vcpu_create,
	.vcpu_destroy = kvm_vcpu_destroy,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_kick = kvm_vcpu_kick,
	.vcpu_pause_notify = kvm_arch_vcpu_pause_notify,
	.clock_save = kvm_arch_clock_save,
	.clock_restore = kvm_arch_clock_restore,
	.vcpu_get_regs = kvm_get_regs,
	.vcpu_set_regs = kvm_set_regs,
	.vcpu_state_save = kvm_arch_vcpu_state_save,
	.vcpu_state_load = kvm_arch_vcpu_state_load,
	.vm_state_save = kvm_arch_vm_state_save,
	.vm_state_load = kvm_arch_vm_state_load,
};
