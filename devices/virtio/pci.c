/* SPDX-License-Identifier: MIT */
/*
 * virtio-pci, the modern (virtio 1.x) PCI transport (virtio 1.2 section
 * 4.1): a PCI function, vendor 0x1af4, device 0x1040 + the virtio device
 * id, with one 64-bit memory BAR holding every structure the driver finds
 * through vendor-specific capabilities:
 *
 *   0x0000 common configuration (features, status, queue set-up)
 *   0x1000 ISR status (read to clear; for INTx, which this function lacks)
 *   0x2000 device configuration (the model's config space)
 *   0x3000 notifications: queue i at 0x3000 + 4 * i (notify_off_multiplier
 *          4, queue_notify_off = i), an ioeventfd each
 *   0x4000 MSI-X table, 0x6000 its pending-bit array (devices/pci/msix.c)
 *
 * Interrupts are MSI-X only (Interrupt Pin 0): vector i of the table has
 * GSI gsi_base + i and an eventfd with an irqfd on that GSI, and the
 * route behind the GSI follows the table entry, MSI-X enable and the masks
 * (msix.c's route callback, vm_msi_route). The driver points the
 * configuration change and each queue at a vector (config_msix_vector,
 * queue_msix_vector); an interrupt for a source signals its vector's
 * eventfd, so KVM injects the message without the VMM. A masked vector's
 * interrupt waits in the PBA and goes when unmasked; both under the MSI-X
 * lock, so a mask set meanwhile never loses one.
 *
 * Everything else (status, features, queues, reset) is transport.c's, as
 * for virtio-mmio. Snapshots: transport_snap.c's payload with magic
 * "VPCI", whose transport part is u16 the configuration's vector, u16
 * each queue's (a table index or NO_VECTOR), then the MSI-X state
 * (pci_msix_save); the function's configuration space is the bus's
 * (devices/pci/pci.c), restored before it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/snapfile.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci.h"
#include "devices/virtio/transport.h"
#include "utils.h"
#include "vm.h"

#define VPCI_VENDOR 0x1af4
#define VPCI_DEVICE_BASE 0x1040     /* + virtio device id: modern-only */
#define VPCI_REVISION 1             /* modern devices have revision >= 1 */
#define VPCI_BAR 0
#define VPCI_BAR_SIZE 0x8000

#define VPCI_COMMON_OFF 0x0000
#define VPCI_COMMON_LEN 0x40 /* 0x38 and up (notify data, queue reset): read 0 */
#define VPCI_ISR_OFF 0x1000
#define VPCI_ISR_LEN 4
#define VPCI_DEVICE_OFF 0x2000
#define VPCI_DEVICE_MAX 0x1000
#define VPCI_NOTIFY_OFF 0x3000
#define VPCI_NOTIFY_MULT 4
#define VPCI_NOTIFY_MAX 0x1000
#define VPCI_MSIX_TABLE_OFF 0x4000
#define VPCI_MSIX_PBA_OFF 0x6000
#define VPCI_MAX_VECTORS ((VPCI_MSIX_PBA_OFF - VPCI_MSIX_TABLE_OFF) / PCI_MSIX_ENTRY_SIZE)

/* Vendor-specific capability (4.1.4): cfg_type values and layout. */
#define PCI_CAP_ID_VNDR 0x09
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_LEN 16
#define VIRTIO_PCI_NOTIFY_CAP_LEN 20
#define CAP_CFG_TYPE 3
#define CAP_BAR 4
#define CAP_OFFSET 8
#define CAP_LENGTH 12
#define CAP_NOTIFY_MULT 16

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* Common configuration (4.1.4.3), offsets in the structure. */
enum {
	CC_DFSELECT = 0x00, CC_DF = 0x04, CC_GFSELECT = 0x08, CC_GF = 0x0c,
	CC_MSIX_CONFIG = 0x10, CC_NUM_QUEUES = 0x12, CC_STATUS = 0x14,
	CC_CFG_GENERATION = 0x15, CC_Q_SELECT = 0x16, CC_Q_SIZE = 0x18,
	CC_Q_MSIX_VECTOR = 0x1a, CC_Q_ENABLE = 0x1c, CC_Q_NOTIFY_OFF = 0x1e,
	CC_Q_DESC = 0x20, CC_Q_DRIVER = 0x28, CC_Q_DEVICE = 0x30,
};

struct virtio_pci {
	struct pci_function fn;
	struct pci_msix msix;
	bool msix_ready;                /* msix initialised (free it) */
	struct pci_bus *bus;
	struct virtio_dev *vd;
	uint16_t nr_vectors;            /* the configuration's + one per queue */
	uint32_t gsi_base;              /* vector i: GSI gsi_base + i */
	int *vector_fd;                 /* vector i's eventfd (irqfd), or -1 */
	/* What each source signals (VIRTIO_MSI_NO_VECTOR: nothing). Written
	 * under vd->lock, read by any thread raising an interrupt. */
	_Atomic uint16_t config_vector;
	_Atomic uint16_t *queue_vector;
	uint64_t notify_addr;           /* where the ioeventfds are, 0: none */
	/* A data path outside the library (vhost): what it signals for
	 * queue i, watched by the I/O thread (NULL unless external_used_irq). */
	struct vpci_call {
		struct virtio_pci *p;
		unsigned q;
		int fd;
	} *calls;
	struct {                        /* a snapshot's part, parsed, to apply */
		uint16_t config_vector;
		uint16_t *queue_vector;
		struct pci_msix_saved msix;
	} loading;
};

static struct virtio_pci *vpci_of(struct virtio_dev *vd)
{
	return vd->tpriv;
}

/* ---- interrupts ---- */

static void vpci_interrupt(struct virtio_dev *vd, int source)
{
	struct virtio_pci *p = vpci_of(vd);
	uint16_t vec;

	if (source == VIRTIO_IRQ_CONFIG)
		vec = atomic_load(&p->config_vector);
	else if (source >= 0 && (unsigned)source < vd->nr_queues)
		vec = atomic_load(&p->queue_vector[source]);
	else
		return;
	if (vec >= p->nr_vectors)
		return; /* NO_VECTOR: the driver wants no interrupt for it */
	/* vpci_fire now (under the MSI-X lock, so the route cannot change
	 * before KVM takes it), or pending until unmasked */
	pci_msix_raise(&p->msix, vec);
}

/* msix.c: vector vec now delivers (addr, data), or nothing. */
static void vpci_route(struct pci_msix *m, uint16_t vec, bool usable, uint64_t addr,
		       uint32_t data)
{
	struct virtio_pci *p = m->opaque;
	int err = vm_msi_route(p->vd->vm, p->gsi_base + vec, usable, addr, data);

	if (err)
		vm_warn(p->vd->vm, "%s at %s: MSI-X vector %u: cannot route GSI %u: %s",
			p->vd->ops->name, p->vd->where, vec, p->gsi_base + vec, strerror(-err));
}

/* msix.c: vec may send now (raised while usable, or pending and
 * unmasked): its eventfd, so KVM injects the message. MSI-X lock held. */
static void vpci_fire(struct pci_msix *m, uint16_t vec)
{
	struct virtio_pci *p = m->opaque;

	virtio_eventfd_signal(p->vector_fd[vec]);
}

static const struct pci_msix_ops vpci_msix_ops = { .route = vpci_route, .fire = vpci_fire };

/* I/O thread: vhost used buffers on queue q: its vector (or pending, if
 * the guest masked it; so a masked vector loses nothing, where an irqfd
 * signalled with no route would). One wake-up per interrupt, not per
 * frame: vhost signals only when the driver asks. */
static int call_ready(void *opaque)
{
	struct vpci_call *c = opaque;
	uint64_t n;

	if (read(c->fd, &n, sizeof(n)) == sizeof(n))
		vpci_interrupt(c->p->vd, (int)c->q);
	return VM_WATCH_KEEP;
}

static int vpci_call_fd(struct virtio_dev *vd, unsigned q)
{
	struct virtio_pci *p = vpci_of(vd);

	return p->calls ? p->calls[q].fd : -1;
}

/* A vector number the driver wrote: kept when the table has it, else
 * NO_VECTOR, which the driver reads back as the refusal (4.1.5.1.2). */
static uint16_t checked_vector(const struct virtio_pci *p, uint16_t v)
{
	return v < p->nr_vectors ? v : VIRTIO_MSI_NO_VECTOR;
}

/* ---- common configuration ---- */

static uint32_t queue_reg_read(struct virtio_pci *p, uint32_t off, unsigned size)
{
	struct virtio_dev *vd = p->vd;
	struct virtio_queue *q = virtio_selected_queue(vd);
	uint64_t addr;

	if (!q)
		return 0; /* queue_size 0: no such queue */
	switch (off) {
	case CC_Q_SIZE: return size == 2 ? q->num : 0;
	case CC_Q_MSIX_VECTOR: return size == 2 ? atomic_load(&p->queue_vector[q->index]) : 0;
	case CC_Q_ENABLE: return size == 2 ? q->ready : 0;
	case CC_Q_NOTIFY_OFF: return size == 2 ? q->index : 0;
	}
	if (off < CC_Q_DESC || off >= CC_Q_DEVICE + 8 || size != 4)
		return 0;
	addr = off < CC_Q_DRIVER ? q->desc : off < CC_Q_DEVICE ? q->driver : q->device;
	return (off & 4) ? (uint32_t)(addr >> 32) : (uint32_t)addr;
}

/* A register of the common configuration: its own width only (64-bit
 * addresses as two 32-bit halves); anything else reads 0. Lock held. */
static uint32_t common_read(struct virtio_pci *p, uint32_t off, unsigned size)
{
	struct virtio_dev *vd = p->vd;

	switch (off) {
	case CC_DFSELECT: return size == 4 ? vd->dev_features_sel : 0;
	case CC_DF:
		return size == 4 ? virtio_device_features_word(vd, vd->dev_features_sel) : 0;
	case CC_GFSELECT: return size == 4 ? vd->drv_features_sel : 0;
	case CC_GF:
		if (size != 4 || vd->drv_features_sel >= 2)
			return 0;
		return (uint32_t)(vd->drv_features >> (32 * vd->drv_features_sel));
	case CC_MSIX_CONFIG: return size == 2 ? atomic_load(&p->config_vector) : 0;
	case CC_NUM_QUEUES: return size == 2 ? vd->nr_queues : 0;
	case CC_STATUS: return size == 1 ? virtio_status_read(vd) : 0;
	case CC_CFG_GENERATION: return size == 1 ? (uint8_t)vd->config_generation : 0;
	case CC_Q_SELECT: return size == 2 ? vd->queue_sel : 0;
	default: return queue_reg_read(p, off, size);
	}
}

static void queue_reg_write(struct virtio_pci *p, uint32_t off, unsigned size, uint32_t v)
{
	struct virtio_dev *vd = p->vd;
	struct virtio_queue *q = virtio_selected_queue(vd);

	if (!q)
		return;
	if (size == 2) {
		switch (off) {
		case CC_Q_SIZE:
			virtio_queue_size_write(vd, q, v);
			return;
		case CC_Q_MSIX_VECTOR:
			atomic_store(&p->queue_vector[q->index], checked_vector(p, (uint16_t)v));
			return;
		case CC_Q_ENABLE:
			virtio_queue_set_ready(vd, q, v);
			return;
		}
		return;
	}
	if (size != 4 || off < CC_Q_DESC || off >= CC_Q_DEVICE + 8)
		return;
	virtio_queue_addr_write(q, off < CC_Q_DRIVER ? &q->desc :
				   off < CC_Q_DEVICE ? &q->driver : &q->device,
				(off & 4) != 0, v);
}

/* Status 0 also points every source at no vector (as after power-on). */
static void status_write(struct virtio_pci *p, uint32_t v)
{
	virtio_status_write(p->vd, v);
	if (v)
		return;
	atomic_store(&p->config_vector, VIRTIO_MSI_NO_VECTOR);
	for (unsigned i = 0; i < p->vd->nr_queues; i++)
		atomic_store(&p->queue_vector[i], VIRTIO_MSI_NO_VECTOR);
}

/* Lock held. */
static void common_write(struct virtio_pci *p, uint32_t off, unsigned size, uint32_t v)
{
	struct virtio_dev *vd = p->vd;

	switch (off) {
	case CC_DFSELECT:
		if (size == 4)
			vd->dev_features_sel = v;
		return;
	case CC_GFSELECT:
		if (size == 4)
			vd->drv_features_sel = v;
		return;
	case CC_GF:
		if (size == 4)
			virtio_driver_features_write(vd, vd->drv_features_sel, v);
		return;
	case CC_MSIX_CONFIG:
		if (size == 2)
			atomic_store(&p->config_vector, checked_vector(p, (uint16_t)v));
		return;
	case CC_STATUS:
		if (size == 1)
			status_write(p, v);
		return;
	case CC_Q_SELECT:
		if (size == 2)
			vd->queue_sel = v;
		return;
	default:
		queue_reg_write(p, off, size, v);
	}
}

/* ---- the BAR ---- */

static bool in_region(uint64_t off, size_t size, uint64_t start, uint64_t len)
{
	return off >= start && off - start < len && size <= len - (off - start);
}

/* Natural sizes at natural alignment: everything the spec lets a driver
 * use; the rest reads 0 and is dropped. */
static bool plain_access(uint64_t off, size_t size)
{
	return (size == 1 || size == 2 || size == 4) && !(off & (size - 1));
}

static int vpci_bar_read(struct pci_function *f, int bar, uint64_t off, void *data, size_t size)
{
	struct virtio_pci *p = f->opaque;
	struct virtio_dev *vd = p->vd;
	uint32_t v = 0;

	memset(data, 0, size);
	if (bar != VPCI_BAR)
		return 0;
	if (pci_msix_owns(&p->msix, off)) {
		pci_msix_bar_read(&p->msix, off, data, size);
		return 0;
	}
	if (in_region(off, size, VPCI_DEVICE_OFF, vd->ops->config_len)) {
		virtio_config_read(vd, off - VPCI_DEVICE_OFF, data, size);
		return 0;
	}
	if (!plain_access(off, size))
		return 0;
	if (in_region(off, size, VPCI_COMMON_OFF, VPCI_COMMON_LEN)) {
		pthread_mutex_lock(&vd->lock);
		v = common_read(p, (uint32_t)(off - VPCI_COMMON_OFF), (unsigned)size);
		pthread_mutex_unlock(&vd->lock);
	} else if (off == VPCI_ISR_OFF) {
		/* Reading clears it (4.1.4.5), as one step: a bit raised
		 * meanwhile is read now or stays for the next read. */
		v = atomic_exchange(&vd->isr, 0);
	}
	memcpy(data, &v, size);
	return 0;
}

static int vpci_bar_write(struct pci_function *f, int bar, uint64_t off, const void *data,
			  size_t size)
{
	struct virtio_pci *p = f->opaque;
	struct virtio_dev *vd = p->vd;
	uint32_t v = 0;

	if (bar != VPCI_BAR)
		return 0;
	if (pci_msix_owns(&p->msix, off)) {
		pci_msix_bar_write(&p->msix, off, data, size);
		return 0;
	}
	if (in_region(off, size, VPCI_DEVICE_OFF, vd->ops->config_len)) {
		virtio_config_write(vd, off - VPCI_DEVICE_OFF, data, size);
		return 0;
	}
	if (!plain_access(off, size))
		return 0;
	memcpy(&v, data, size);
	if (in_region(off, size, VPCI_NOTIFY_OFF, (uint64_t)vd->nr_queues * VPCI_NOTIFY_MULT)) {
		/* Reached only without an ioeventfd there (or another width):
		 * the same eventfd, the slow way. */
		virtio_eventfd_signal(vd->queues[(off - VPCI_NOTIFY_OFF) / VPCI_NOTIFY_MULT].notify_fd);
		return 0;
	}
	if (in_region(off, size, VPCI_COMMON_OFF, VPCI_COMMON_LEN)) {
		pthread_mutex_lock(&vd->lock);
		common_write(p, (uint32_t)(off - VPCI_COMMON_OFF), (unsigned)size, v);
		pthread_mutex_unlock(&vd->lock);
	}
	return 0;
}

/* The notify address of every queue: an ioeventfd each, 2 bytes (Linux's
 * vp_notify writes the queue index as a 16-bit value). Bus lock held. */
static void notify_unwire(struct virtio_pci *p)
{
	for (unsigned i = 0; p->notify_addr && i < p->vd->nr_queues; i++)
		vm_del_ioeventfd(p->vd->vm, p->notify_addr + VPCI_NOTIFY_MULT * i, 2, DEVICE_MMIO,
				 p->vd->queues[i].notify_fd, 0, 0);
	p->notify_addr = 0;
}

static void notify_wire(struct virtio_pci *p, uint64_t addr)
{
	struct virtio_dev *vd = p->vd;

	for (unsigned i = 0; i < vd->nr_queues; i++) {
		int err = vm_add_ioeventfd(vd->vm, addr + VPCI_NOTIFY_MULT * i, 2, DEVICE_MMIO,
					   vd->queues[i].notify_fd, 0, 0);

		if (err) {
			if (err != -ENOTSUP)
				vm_warn(vd->vm, "%s at %s: queue %u: no ioeventfd (%s): notifications exit to the VMM",
					vd->ops->name, vd->where, i, strerror(-err));
			/* The BAR write handler takes them all. */
			p->notify_addr = addr;
			notify_unwire(p);
			return;
		}
		p->notify_addr = addr;
	}
}

/* The guest moved the BAR or switched decoding: the ioeventfds follow. */
static void vpci_bar_moved(struct pci_function *f, int bar, uint64_t addr, bool enabled)
{
	struct virtio_pci *p = f->opaque;

	if (bar != VPCI_BAR)
		return;
	notify_unwire(p);
	if (enabled)
		notify_wire(p, addr + VPCI_NOTIFY_OFF);
}

static void vpci_config_write(struct pci_function *f, uint32_t off, uint32_t size)
{
	struct virtio_pci *p = f->opaque;

	pci_msix_config_written(&p->msix, off, size);
}

static const struct pci_function_ops vpci_fn_ops = {
	.bar_read = vpci_bar_read, .bar_write = vpci_bar_write,
	.config_write = vpci_config_write, .bar_moved = vpci_bar_moved,
};

/* ---- set-up ---- */

static uint32_t class_code(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK: return 0x018000;   /* mass storage, other */
	case VIRTIO_ID_NET: return 0x020000;     /* network, ethernet */
	case VIRTIO_ID_CONSOLE: return 0x078000; /* communication, other */
	default: return 0x00ff00;                /* unclassified */
	}
}

/* One vendor capability pointing at [off, off + len) of the BAR. */
static int add_virtio_cap(struct pci_function *f, uint8_t type, uint32_t off, uint32_t len)
{
	uint8_t cap_len = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? VIRTIO_PCI_NOTIFY_CAP_LEN :
			  VIRTIO_PCI_CAP_LEN;
	uint8_t at = pci_function_add_cap(f, PCI_CAP_ID_VNDR, cap_len);

	if (!at)
		return -ENOSPC;
	pci_cfg_set8(f, at + 2, cap_len);
	pci_cfg_set8(f, at + CAP_CFG_TYPE, type);
	pci_cfg_set8(f, at + CAP_BAR, VPCI_BAR);
	pci_cfg_set32(f, at + CAP_OFFSET, off);
	pci_cfg_set32(f, at + CAP_LENGTH, len);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
		pci_cfg_set32(f, at + CAP_NOTIFY_MULT, VPCI_NOTIFY_MULT);
	return 0;
}

static int build_function(struct virtio_pci *p, char *why, size_t len)
{
	const struct virtio_dev_ops *ops = p->vd->ops;
	struct pci_function *f = &p->fn;
	int err;

	pci_function_init(f, VPCI_VENDOR, (uint16_t)(VPCI_DEVICE_BASE + ops->device_id),
			  class_code(ops->device_id), VPCI_VENDOR, (uint16_t)ops->device_id);
	pci_cfg_set8(f, PCI_REVISION_ID, VPCI_REVISION);
	f->ops = &vpci_fn_ops;
	f->opaque = p;
	err = pci_function_add_bar(p->bus, f, VPCI_BAR, PCI_BAR_MEM64, VPCI_BAR_SIZE, false);
	if (err)
		return set_why(why, len, "no room for its BAR in the PCI window: %s", strerror(-err));
	err = pci_msix_init(&p->msix, f, p->nr_vectors, VPCI_BAR, VPCI_MSIX_TABLE_OFF,
			    VPCI_MSIX_PBA_OFF, &vpci_msix_ops, p);
	p->msix_ready = !err;
	if (!err)
		err = add_virtio_cap(f, VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON_OFF, VPCI_COMMON_LEN);
	if (!err)
		err = add_virtio_cap(f, VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF,
				     p->vd->nr_queues * VPCI_NOTIFY_MULT);
	if (!err)
		err = add_virtio_cap(f, VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR_OFF, VPCI_ISR_LEN);
	/* Only a device with a configuration has the structure (4.1.4.6). */
	if (!err && ops->config_len)
		err = add_virtio_cap(f, VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVICE_OFF, ops->config_len);
	if (err)
		return set_why(why, len, "cannot build its capabilities: %s", strerror(-err));
	return 0;
}

/* A GSI, an eventfd and an irqfd per vector: the interrupt path never
 * leaves the kernel once the driver has programmed the table. */
static int wire_vectors(struct virtio_pci *p, char *why, size_t len)
{
	struct vm *vm = p->vd->vm;

	if (pci_bus_alloc_msi_gsis(p->bus, p->nr_vectors, &p->gsi_base))
		return set_why(why, len, "no MSI GSIs left for %u vectors", p->nr_vectors);
	for (uint16_t i = 0; i < p->nr_vectors; i++) {
		int err;

		p->vector_fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->vector_fd[i] < 0)
			return set_why(why, len, "eventfd: %s", strerror(errno));
		err = vm_add_irqfd(vm, p->gsi_base + i, p->vector_fd[i]);
		if (err == -ENOTSUP)
			return set_why(why, len, "virtio-pci needs irqfds (KVM with an in-kernel irqchip)");
		if (err)
			return set_why(why, len, "cannot wire GSI %u: %s", p->gsi_base + i,
				       strerror(-err));
	}
	return 0;
}

/* vhost's call eventfds, one per queue, each watched by the I/O thread. */
static int wire_calls(struct virtio_pci *p, char *why, size_t len)
{
	struct virtio_dev *vd = p->vd;

	if (!vd->ops->external_used_irq)
		return 0;
	p->calls = calloc(vd->nr_queues, sizeof(*p->calls));
	if (!p->calls)
		return set_why(why, len, "out of memory");
	for (unsigned i = 0; i < vd->nr_queues; i++)
		p->calls[i] = (struct vpci_call){ .p = p, .q = i, .fd = -1 };
	for (unsigned i = 0; i < vd->nr_queues; i++) {
		int err;

		p->calls[i].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->calls[i].fd < 0)
			return set_why(why, len, "eventfd: %s", strerror(errno));
		err = vm_watch_fd(vd->vm, p->calls[i].fd, call_ready, &p->calls[i]);
		if (err)
			return set_why(why, len, "cannot watch queue %u's interrupt: %s", i,
				       strerror(-err));
	}
	return 0;
}

static void vpci_free(struct virtio_dev *vd)
{
	struct virtio_pci *p = vpci_of(vd);

	if (!p)
		return;
	/* The notify ioeventfds are not taken back: they exist only once the
	 * guest runs, and then this is vm_destroy (KVM drops them with the
	 * VM, and the confined caller may not make the ioctl). */
	if (p->fn.bus)
		pci_bus_remove(p->bus, &p->fn);
	if (p->msix_ready)
		pci_msix_free(&p->msix);
	/* The irqfds stay with KVM until the VM goes: it holds the eventfd. */
	for (uint16_t i = 0; p->vector_fd && i < p->nr_vectors; i++)
		if (p->vector_fd[i] >= 0)
			close(p->vector_fd[i]);
	free(p->vector_fd);
	for (unsigned i = 0; p->calls && i < vd->nr_queues; i++)
		if (p->calls[i].fd >= 0) {
			vm_unwatch_fd(vd->vm, p->calls[i].fd); /* -ENOENT: never watched */
			close(p->calls[i].fd);
		}
	free(p->calls);
	free((void *)p->queue_vector);
	free(p->loading.queue_vector);
	pci_msix_saved_free(&p->loading.msix);
	free(p);
	vd->tpriv = NULL;
}

/* ---- snapshots ---- */

static void vpci_save(struct virtio_dev *vd, struct snap_buf *out)
{
	struct virtio_pci *p = vpci_of(vd);

	snap_put_u16(out, atomic_load(&p->config_vector));
	for (unsigned i = 0; i < vd->nr_queues; i++)
		snap_put_u16(out, atomic_load(&p->queue_vector[i]));
	pci_msix_save(&p->msix, out);
}

static bool vector_ok(const struct virtio_pci *p, uint16_t v)
{
	return v < p->nr_vectors || v == VIRTIO_MSI_NO_VECTOR;
}

static int vpci_parse(struct virtio_dev *vd, struct snap_cursor *in)
{
	struct virtio_pci *p = vpci_of(vd);

	p->loading.config_vector = snap_get_u16(in);
	for (unsigned i = 0; i < vd->nr_queues; i++)
		p->loading.queue_vector[i] = snap_get_u16(in);
	if (in->bad || !vector_ok(p, p->loading.config_vector))
		return -EINVAL;
	for (unsigned i = 0; i < vd->nr_queues; i++)
		if (!vector_ok(p, p->loading.queue_vector[i]))
			return -EINVAL;
	return pci_msix_parse(&p->msix, in, &p->loading.msix);
}

static void vpci_apply(struct virtio_dev *vd)
{
	struct virtio_pci *p = vpci_of(vd);

	atomic_store(&p->config_vector, p->loading.config_vector);
	for (unsigned i = 0; i < vd->nr_queues; i++)
		atomic_store(&p->queue_vector[i], p->loading.queue_vector[i]);
	pci_msix_apply(&p->msix, &p->loading.msix);
}

static void vpci_discard(struct virtio_dev *vd)
{
	pci_msix_saved_free(&vpci_of(vd)->loading.msix);
}

static const struct virtio_transport vpci_transport = {
	.name = "virtio-pci", .interrupt = vpci_interrupt, .free = vpci_free,
	.call_fd = vpci_call_fd,
	.snap_magic = 0x49435056u, /* "VPCI" */
	.save = vpci_save, .parse = vpci_parse, .apply = vpci_apply, .discard = vpci_discard,
};

static struct virtio_pci *vpci_alloc(struct virtio_dev *vd, struct pci_bus *bus)
{
	struct virtio_pci *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	vd->tpriv = p;
	p->vd = vd;
	p->bus = bus;
	p->nr_vectors = (uint16_t)(vd->nr_queues + 1);
	p->vector_fd = malloc(p->nr_vectors * sizeof(*p->vector_fd));
	if (!p->vector_fd)
		return NULL; /* vpci_free takes the rest */
	for (uint16_t i = 0; i < p->nr_vectors; i++)
		p->vector_fd[i] = -1;
	p->queue_vector = calloc(vd->nr_queues, sizeof(*p->queue_vector));
	p->loading.queue_vector = calloc(vd->nr_queues, sizeof(*p->loading.queue_vector));
	if (!p->queue_vector || !p->loading.queue_vector)
		return NULL;
	atomic_store(&p->config_vector, VIRTIO_MSI_NO_VECTOR);
	for (unsigned i = 0; i < vd->nr_queues; i++)
		atomic_store(&p->queue_vector[i], VIRTIO_MSI_NO_VECTOR);
	return p;
}

static int check_ops(const struct virtio_dev_ops *ops, char *why, size_t len)
{
	if (!virtio_ops_valid(ops) || ops->config_len > VPCI_DEVICE_MAX ||
	    ops->num_queues * VPCI_NOTIFY_MULT > VPCI_NOTIFY_MAX ||
	    ops->num_queues + 1 > VPCI_MAX_VECTORS)
		return set_why(why, len, "invalid virtio device description");
	return 0;
}

struct virtio_dev *virtio_pci_create(struct vm *vm, struct pci_bus *bus,
				     const struct virtio_dev_ops *ops, void *priv,
				     char *why, size_t why_len)
{
	const struct device tmpl = {
		.name = ops ? ops->name : NULL, .no_address = true, .space = DEVICE_MMIO,
		.destroy = virtio_dev_destroy,
		.metrics = ops && ops->metrics ? virtio_dev_metrics : NULL,
		.quiesce = virtio_dev_quiesce, .unquiesce = virtio_dev_unquiesce,
		.save = virtio_dev_save, .load = virtio_dev_load,
	};
	struct virtio_dev *vd;
	struct virtio_pci *p;
	int slot;

	if (!vm || !bus || check_ops(ops, why, why_len))
		return NULL;
	vd = virtio_transport_alloc(vm, ops, priv, &vpci_transport, &tmpl);
	if (!vd) {
		set_why(why, why_len, "out of memory");
		return NULL;
	}
	p = vpci_alloc(vd, bus);
	if (!p) {
		set_why(why, why_len, "out of memory");
		goto fail;
	}
	if (build_function(p, why, why_len) || wire_vectors(p, why, why_len) ||
	    wire_calls(p, why, why_len) || virtio_transport_watch_queues(vd, why, why_len))
		goto fail;
	slot = pci_bus_add(bus, &p->fn);
	if (slot < 0) {
		set_why(why, why_len, "no free PCI slot (at most %d devices)", PCI_SLOTS - 1);
		goto fail;
	}
	vd->dev.base = p->fn.bars[VPCI_BAR].addr; /* for logs: where it starts */
	snprintf(vd->where, sizeof(vd->where), "PCI 00:%02x.0", slot);
	return vd;
fail:
	virtio_transport_free(vd);
	return NULL;
}
