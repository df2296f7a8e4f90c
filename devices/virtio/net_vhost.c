/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's kernel data path: /dev/vhost-net moves frames between the
 * guest's rings and the TAP itself, so no frame passes through this process.
 * The device model keeps the registers, the config space and the TAP's
 * offloads; at DRIVER_OK it hands vhost the memory table (the VM's slots),
 * each ring (size, start index 0, host addresses), the queue's notify
 * eventfd as the kick (the ioeventfd KVM signals on QueueNotify) and the
 * irqfd as the call, then the TAP as the backend. Reset takes the backend
 * away again, which also waits for vhost's worker to finish what it does.
 *
 * With several queue pairs (VIRTIO_NET_F_MQ) every pair has its own vhost
 * fd and TAP queue fd; a pair the driver does not use has its TAP queue
 * detached and no backend (vhost refuses a detached queue: it polls as an
 * error), so vhost_net_start may leave the backend out and
 * vhost_net_set_backend hands it over when the control queue enables the
 * pair (on the I/O thread).
 *
 * The vhost fd is opened and owned (VHOST_SET_OWNER) when the device is
 * created, on the main thread before the sandbox; the rest runs on a vCPU
 * thread (the status register), so seccomp.c allows those ioctls there.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "mm.h"
#include "utils.h"
#include "vm.h"


int vhost_net_open(uint64_t *features, char *why, size_t why_len)
{
	int fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;

		set_why(why, why_len, "vhost=on: /dev/vhost-net: %s%s", strerror(err),
			err == ENOENT ? " (no vhost-net here: modprobe vhost_net, or vhost=off)" :
			err == EACCES || err == EPERM ? " (no access: add yourself to its group, or vhost=off)" : "");
		return -err;
	}
	if (ioctl(fd, VHOST_SET_OWNER, NULL) < 0 ||
	    ioctl(fd, VHOST_GET_FEATURES, features) < 0) {
		int err = errno;

		set_why(why, why_len, "vhost=on: /dev/vhost-net: %s", strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

/* The whole of guest RAM, slot by slot, as vhost sees it. */
static int set_mem_table(int fd, const struct mem_map *mm)
{
	struct vhost_memory *m = calloc(1, sizeof(*m) + (size_t)mm->nr_slots *
					 sizeof(struct vhost_memory_region));
	int err = 0;

	if (!m)
		return -ENOMEM;
	m->nregions = (uint32_t)mm->nr_slots;
	for (int i = 0; i < mm->nr_slots; i++)
		m->regions[i] = (struct vhost_memory_region){
			.guest_phys_addr = mm->slots[i].gpa,
			.memory_size = mm->slots[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)mm->slots[i].hva,
		};
	if (ioctl(fd, VHOST_SET_MEM_TABLE, m) < 0)
		err = -errno;
	free(m);
	return err;
}

/* vhost ring `i` (0 receive, 1 transmit) is the device's queue `first + i`. */
static int set_vring(int fd, struct virtio_dev *vd, unsigned first, unsigned i,
		     const char **step)
{
	struct virtio_queue *q = &vd->queues[first + i];
	struct vhost_vring_state num = { .index = i, .num = q->vq.num };
	/* 0 after a reset; a restored queue's saved position otherwise */
	struct vhost_vring_state base = { .index = i, .num = q->vq.last_avail };
	struct vhost_vring_addr addr = {
		.index = i,
		.desc_user_addr = (uint64_t)(uintptr_t)q->vq.desc,
		.avail_user_addr = (uint64_t)(uintptr_t)q->vq.avail,
		.used_user_addr = (uint64_t)(uintptr_t)q->vq.used,
	};
	struct vhost_vring_file kick = { .index = i, .fd = q->notify_fd };
	struct vhost_vring_file call = { .index = i, .fd = virtio_queue_call_fd(vd, first + i) };

	if (!q->ready) {
		*step = "a queue is not ready at DRIVER_OK";
		return -EINVAL;
	}
	*step = "VHOST_SET_VRING_NUM";
	if (ioctl(fd, VHOST_SET_VRING_NUM, &num) < 0)
		return -errno;
	*step = "VHOST_SET_VRING_BASE";
	if (ioctl(fd, VHOST_SET_VRING_BASE, &base) < 0)
		return -errno;
	*step = "VHOST_SET_VRING_ADDR";
	if (ioctl(fd, VHOST_SET_VRING_ADDR, &addr) < 0)
		return -errno;
	*step = "VHOST_SET_VRING_KICK";
	if (ioctl(fd, VHOST_SET_VRING_KICK, &kick) < 0)
		return -errno;
	*step = "VHOST_SET_VRING_CALL";
	return ioctl(fd, VHOST_SET_VRING_CALL, &call) < 0 ? -errno : 0;
}

int vhost_net_set_backend(int fd, int tap_fd)
{
	for (unsigned i = 0; i < VHOST_NET_RINGS; i++) {
		struct vhost_vring_file b = { .index = i, .fd = tap_fd };

		if (ioctl(fd, VHOST_NET_SET_BACKEND, &b) < 0)
			return -errno;
	}
	return 0;
}

int vhost_net_start(int fd, struct virtio_dev *vd, unsigned first, int tap_fd,
		    uint64_t vhost_features, const char **step)
{
	uint64_t features = vd->drv_features & vhost_features;
	int err;

	*step = "VHOST_SET_FEATURES";
	if (ioctl(fd, VHOST_SET_FEATURES, &features) < 0)
		return -errno;
	*step = "VHOST_SET_MEM_TABLE";
	err = set_mem_table(fd, vd->vm->mem_map);
	for (unsigned i = 0; !err && i < VHOST_NET_RINGS; i++)
		err = set_vring(fd, vd, first, i, step);
	if (err || tap_fd < 0)
		return err;
	*step = "VHOST_NET_SET_BACKEND";
	err = vhost_net_set_backend(fd, tap_fd);
	if (err)
		vhost_net_set_backend(fd, -1);
	return err;
}

int vhost_net_ring_base(int fd, unsigned i, uint16_t *base)
{
	struct vhost_vring_state s = { .index = i };

	if (ioctl(fd, VHOST_GET_VRING_BASE, &s) < 0)
		return -errno;
	*base = (uint16_t)s.num;
	return 0;
}

void vhost_net_stop(int fd)
{
	/* Fails for rings never set up (reset before DRIVER_OK): harmless. */
	vhost_net_set_backend(fd, -1);
}
