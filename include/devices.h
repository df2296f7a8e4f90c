/* SPDX-License-Identifier: MIT */
/*
 * Device framework. A device claims a range of MMIO or (x86) port-I/O space
 * and gets read/write callbacks with the offset into its range. Callbacks run
 * on the vCPU thread that made the access; a device touched by several vCPUs
 * must lock its own state.
 */
#ifndef VIBEVMM_DEVICES_H
#define VIBEVMM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum device_space {
	DEVICE_MMIO = 0, /* guest-physical memory addresses */
	DEVICE_PIO = 1,  /* x86 I/O ports */
};

struct vm;
struct snap_buf;    /* core/snapfile.h: the snapshot's payload writer ... */
struct snap_cursor; /* ... and reader (little-endian, bounds-checked) */

/*
 * A device's counters for vm_format_metrics(): `group` names its kind
 * ("block", "net"); each counter is a name (a string literal of letters,
 * digits and '_') and its value since the device was created.
 */
#define DEVICE_METRICS_MAX 16
#define DEVICE_ID_MAX 32
struct device_metrics {
	const char *group;
	int nr;
	struct {
		const char *name;
		uint64_t value;
	} counter[DEVICE_METRICS_MAX];
};

struct device {
	const char *name;
	uint64_t base;   /* first GPA (or port) claimed */
	uint64_t size;   /* bytes (or ports) claimed */
	void *private;   /* device-specific data */
	/* Claims no address at all (size 0, no read/write): reached through
	 * another device, as a PCI function is through the bus's BAR
	 * windows. Registered for its life cycle, metrics and snapshots. */
	bool no_address;

	/* Callbacks: return 0, or a negative errno (logged; the access is
	 * then completed as all ones / dropped). */
	int (*read)(struct device *dev, uint64_t offset, void *data, size_t size);
	int (*write)(struct device *dev, uint64_t offset, void *data, size_t size);
	/* Release everything the device owns, the struct included if it was
	 * allocated. Called by vm_destroy for registered devices. */
	void (*destroy)(struct device *dev);

	enum device_space space;
	struct vm *vm; /* set by vm_register_device */

	/* Optional: fill in the device's counters (any thread, any time
	 * while the device is registered; a recent value, never blocking the
	 * device's own threads). */
	void (*metrics)(struct device *dev, struct device_metrics *m);
	/* Its name in metrics ("block_<id>"), set with device_set_id; empty:
	 * its position among the VM's devices of its group ("block_0"). */
	char id[DEVICE_ID_MAX];

	/*
	 * Snapshots (all optional). A snapshot saves a paused VM; it is
	 * restored in a new process into a VM built the same way (the same
	 * devices registered in the same order at the same addresses), guest
	 * RAM already holding its saved contents, and the guest goes on
	 * without a reboot or a driver reset.
	 *
	 * quiesce: the VM is paused; return once nothing the device took from
	 * the guest is in flight and it takes nothing new (virtio-blk: its
	 * worker has answered every request it took and leaves the rest in
	 * the avail ring, which the saved indices make the restored device
	 * take). 0 or -errno. unquiesce: let it go on (the VM continues after
	 * the save, or the save failed); called once for each quiesce.
	 *
	 * save: append the device's guest-visible state to `out` (VM paused or
	 * not started, device quiesced). 0; -EOPNOTSUPP when the device cannot
	 * be restored in its configuration; -ENOMEM (also when `out` failed
	 * to grow).
	 *
	 * load: on a VM built but not started (or paused), parse and check
	 * the whole payload first (every length, index, size, feature bit and
	 * guest address in range and consistent with how this device was
	 * built; nothing left over) and only then put it in place. -EINVAL
	 * for a bad payload, the device unchanged; -EOPNOTSUPP as for save;
	 * another -errno when the host refused a step while applying (the
	 * device is then in no defined state: discard the VM).
	 *
	 * stateless: the device keeps nothing the guest could see (debugcon,
	 * exit port, ACPI PM, pvpanic): it has no save/load and needs no
	 * section in a snapshot. A device with neither save/load nor this
	 * flag cannot be snapshotted.
	 */
	int (*quiesce)(struct device *dev);
	void (*unquiesce)(struct device *dev);
	int (*save)(struct device *dev, struct snap_buf *out);
	int (*load)(struct device *dev, struct snap_cursor *in);
	bool stateless;
};

/*
 * Name a device for metrics, e.g. with a control plane's drive or
 * interface id: 1-31 characters out of [A-Za-z0-9_-] (so it needs no
 * escaping in JSON). 0 or -EINVAL.
 */
int device_set_id(struct device *dev, const char *id);

/*
 * Register a device. The VM takes ownership (destroy is called by vm_destroy).
 * -EINVAL: zero size (unless no_address), range wraps, or no callbacks;
 * -EEXIST: overlaps a
 * registered device; -EBUSY: the VM is running; -ENOMEM.
 */
int vm_register_device(struct vm *vm, struct device *dev);

/* Find the device that claims `addr` in `space`, or NULL. */
struct device *vm_find_device(struct vm *vm, enum device_space space,
			      uint64_t addr);

/* Raise (level 1) or lower (0) an interrupt line of the VM's irqchip. */
int vm_irq_line(struct vm *vm, uint32_t gsi, int level);

/* ---- Devices the library provides ---- */

/* MMIO debug console: a byte written at offset 0 goes to out_fd (through
 * the VM's output stream for it: never blocks, see vm_output_open); with
 * out_fd -1, nowhere. */
#define DEBUGCON_SIZE 0x1000
struct device *debugcon_create(struct vm *vm, uint64_t base, int out_fd);

/*
 * Guest exit port (x86 port I/O): a 1-, 2- or 4-byte write ends the VM with
 * exit reason VCPU_EXIT_GUEST_EXIT and the written value as its status.
 */
struct device *exit_port_create(uint16_t port);
/* The same as a memory-mapped register (arm64): a 1-, 2-, 4- or 8-byte
 * write at base (the low 32 bits are the status). */
#define EXIT_MMIO_SIZE 8
struct device *exit_mmio_create(uint64_t base);

/* ARM PL031 real-time clock (arm64): seconds that follow the host's wall
 * clock from what the guest last loaded; PrimeCell ids for Linux's AMBA
 * bus; no alarm interrupt. */
#define PL031_SIZE 0x1000
struct device *pl031_create(uint64_t base);

/*
 * 16550A UART. Output goes to out_fd (through the VM's output stream for
 * it: never blocks; -1 drops it); input, when in_fd >= 0, is read by the
 * VM's I/O thread and raises `irq` when the guest enables it.
 */
struct device *serial8250_create(struct vm *vm, uint16_t port, uint32_t irq,
				 int in_fd, int out_fd);
/* The same UART memory-mapped (arm64; a device tree "ns16550a" with
 * reg-shift 0 and reg-io-width 1): registers at base + 0..7. */
#define SERIAL8250_SIZE 8
struct device *serial8250_create_mmio(struct vm *vm, uint64_t base, uint32_t irq,
				      int in_fd, int out_fd);

/*
 * After registering the UART, start reading in_fd. `filter`, if given, sees
 * each chunk of input first and returns how many bytes (compacted at the
 * start of buf) go to the guest, e.g. to catch an escape key sequence.
 */
int serial8250_attach_input(struct device *dev,
			    int (*filter)(void *opaque, uint8_t *buf, int len),
			    void *opaque);

/* ACPI PM port (x86): the FADT's reset and sleep registers. 1 = reboot,
 * SLP_TYP 5 with SLP_EN = power off. */
struct device *acpi_pm_create(uint16_t port);

/* pvpanic (x86 port I/O, ACPI "QEMU0001"): a guest write of bit 0 (panicked)
 * ends the VM with VCPU_EXIT_PANIC. */
struct device *pvpanic_create(uint16_t port);

/* i8042 keyboard controller (ports 0x60-0x64), enough for Linux's probe and
 * for reboot through command 0xFE (reboot=k). */
#define I8042_BASE_PORT 0x60
#define I8042_NR_PORTS 5
struct device *i8042_create(void);
/* Press and release Ctrl+Alt+Del on the keyboard (IRQ 1): 0 or -EINVAL
 * when dev is not an i8042. */
int i8042_send_ctrl_alt_del(struct device *dev);

/* ---- Virtio 1.x devices over virtio-mmio version 2 ----
 * Each claims a VIRTIO_MMIO_SIZE window at `base` and raises edge-triggered
 * interrupt `gsi`; describe both to the guest (x86: ACPI "LNRO0005" nodes,
 * or virtio_mmio.device=4K@BASE:GSI). Create them before vm_start() (they
 * wire ioeventfds, irqfds and I/O-thread watches), then vm_register_device.
 * NULL on failure, with a one-line reason in `why` where there is one. */
#define VIRTIO_MMIO_SIZE 0x1000

/*
 * Where the machine puts a virtio device (machine_virtio_next): a
 * virtio-mmio window at `base` with interrupt `gsi`, or, when `pci` is
 * set, a virtio-pci function in the next free slot of that bus (its BAR
 * and MSI-X vectors placed by the bus and the guest). The *_create_in
 * calls take one; the others are virtio-mmio at (base, gsi).
 */
struct pci_bus;
struct virtio_slot {
	uint64_t base;
	uint32_t gsi;
	struct pci_bus *pci;
};

/* Block device on a raw image (or block device) at `path`; `readonly`
 * opens it read-only and tells the guest so. The image is flock'ed
 * (exclusive, or shared for read-only): a locked image is an error. */
struct device *virtio_blk_create(struct vm *vm, uint64_t base, uint32_t gsi,
				 const char *path, int readonly, char *why,
				 size_t why_len);

/* How a disk reaches its image. */
enum virtio_blk_cache {
	VIRTIO_BLK_CACHE_HOST,  /* through the host's page cache (default) */
	VIRTIO_BLK_CACHE_NONE,  /* O_DIRECT, bypassing it ("cache=none") */
};
enum virtio_blk_aio {
	VIRTIO_BLK_AIO_IO_URING, /* many requests in flight (default); falls
				  * back to sync, with a log line, where
				  * io_uring is unavailable */
	VIRTIO_BLK_AIO_SYNC,     /* one request at a time per disk */
};

struct virtio_blk_options {
	const char *path;
	int readonly;
	/* Request queues (VIRTIO_BLK_F_MQ), 1..VIRTIO_BLK_MAX_QUEUES; 0: one
	 * per vCPU created so far (at least 1). */
	unsigned num_queues;
	enum virtio_blk_cache cache;
	enum virtio_blk_aio aio;
};
#define VIRTIO_BLK_MAX_QUEUES 64

/* virtio_blk_create with every option; both durable on FLUSH either way. */
struct device *virtio_blk_create_opts(struct vm *vm, uint64_t base,
				      uint32_t gsi,
				      const struct virtio_blk_options *o,
				      char *why, size_t why_len);

/* Give a disk another image while the VM runs (a new medium, as
 * Firecracker's PATCH /drives): `path` is opened as the first one was (the
 * same read-only mode and cache, locked), requests in flight finish on the
 * old image, those after on the new one, and the guest is told the new
 * capacity (a configuration-change interrupt; Linux logs "new size").
 * The same path again (or another name of the same file) keeps the open
 * image and its lock and tells the guest its size now: Firecracker's way
 * to announce that the file was resized.
 * dev: from virtio_blk_create*. Any thread but the disk's own, one call at
 * a time; blocks until the disk's thread took the image. 0, or -errno with
 * a reason in why (the old image stays). */
int virtio_blk_replace_image(struct device *dev, const char *path, char *why,
			     size_t why_len);

/* Network device on TAP interface `tap` (created when missing and allowed).
 * mac NULL: a stable locally administered address derived from the name. */
struct device *virtio_net_create(struct vm *vm, uint64_t base, uint32_t gsi,
				 const char *tap, const uint8_t mac[6],
				 char *why, size_t why_len);

/* The same with options: vhost != 0 moves the frames through the kernel's
 * vhost-net (/dev/vhost-net; its absence is an error, not a fallback), the
 * VM needing an irqfd (KVM with an in-kernel irqchip). queue_pairs > 1
 * (at most 8) makes a multi-queue device (VIRTIO_NET_F_MQ, a control
 * queue) on a multi-queue TAP, one TAP queue (and vhost fd) per pair; on a
 * single-queue TAP that is an error, unless mq_fallback (the count was
 * only a default) makes it one pair with a log line. */
#define VIRTIO_NET_MAX_QUEUE_PAIRS 8
struct virtio_net_options {
	const char *tap;
	const uint8_t *mac;   /* 6 bytes, or NULL */
	int vhost;
	unsigned queue_pairs; /* 0 or 1: one pair, no MQ */
	int mq_fallback;
};
struct device *virtio_net_create_opts(struct vm *vm, uint64_t base, uint32_t gsi,
				      const struct virtio_net_options *o,
				      char *why, size_t why_len);

/* Console (hvc0 in Linux): guest output to out_fd; input from in_fd once
 * virtio_console_attach_input() is called (after registration; `filter` as
 * for serial8250_attach_input). */
struct device *virtio_console_create(struct vm *vm, uint64_t base,
				     uint32_t gsi, int in_fd, int out_fd);
int virtio_console_attach_input(struct device *dev,
				int (*filter)(void *opaque, uint8_t *buf, int len),
				void *opaque);

/*
 * virtio-vsock with Firecracker's hybrid host side: stream sockets of guest
 * CID `guest_cid` (>= 3) bridged to Unix sockets. The VMM listens at
 * `uds_path` (a stale socket there is replaced, another file refused; it is
 * removed at destroy): a client that writes "CONNECT <port>\n" is connected
 * to the guest's listener on that port and first reads "OK <port>\n". A
 * guest connection to CID 2, port P goes to the Unix socket
 * "<uds_path>_P". See README.md (--vsock).
 */
struct device *virtio_vsock_create(struct vm *vm, uint64_t base, uint32_t gsi,
				   uint64_t guest_cid, const char *uds_path,
				   char *why, size_t why_len);

/* Entropy source fed by getrandom(). */
struct device *virtio_rng_create(struct vm *vm, uint64_t base, uint32_t gsi);

/* The same devices in a slot from the machine (struct virtio_slot):
 * virtio-mmio or virtio-pci, as the machine was made. */
struct device *virtio_blk_create_in(struct vm *vm, const struct virtio_slot *slot,
				    const struct virtio_blk_options *o,
				    char *why, size_t why_len);
struct device *virtio_net_create_in(struct vm *vm, const struct virtio_slot *slot,
				    const struct virtio_net_options *o,
				    char *why, size_t why_len);
struct device *virtio_console_create_in(struct vm *vm, const struct virtio_slot *slot,
					int in_fd, int out_fd);
struct device *virtio_vsock_create_in(struct vm *vm, const struct virtio_slot *slot,
				      uint64_t guest_cid, const char *uds_path,
				      char *why, size_t why_len);
struct device *virtio_rng_create_in(struct vm *vm, const struct virtio_slot *slot);

#endif
