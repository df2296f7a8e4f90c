/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue walker (virtio 1.2 section 2.7). The rings live in guest
 * RAM and the guest may rewrite them at any moment, from any vCPU:
 *  - ring pointers are translated once with their full length (virtq_init);
 *  - each descriptor is copied out once and only the copy is used;
 *  - every buffer goes through vm_gpa_to_hva() with its length;
 *  - a chain ends within the table size or it is a loop; the whole chain is
 *    bounded in segments (the caller's iovec array) and bytes;
 *  - avail->idx is read with acquire, used->idx written with release, and a
 *    full fence separates publishing from reading the driver's event fields.
 */
#include <errno.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "mm.h"
#include "utils.h"

/* Virtio 1.x rings are little-endian; every host we build for is too. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "virtio rings are little-endian: add byte swapping");
_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc layout");

static uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static uint16_t *used_event(const struct virtq *vq)
{
	return &vq->avail->ring[vq->num];
}

static uint16_t *avail_event(const struct virtq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->num];
}

int virtq_init(struct virtq *vq, struct vm *vm, uint16_t num, uint64_t desc,
	       uint64_t avail, uint64_t used, uint64_t features)
{
	void *d, *a, *u;

	if (!num || num > VIRTQ_MAX_SIZE || (num & (num - 1)))
		return -EINVAL;
	/* Alignment the spec demands (2.7.2); it also keeps the atomic
	 * index accesses below naturally aligned. */
	if ((desc & 15) || (avail & 1) || (used & 3))
		return -EINVAL;
	d = vm_gpa_to_hva(vm, desc, VIRTQ_DESC_BYTES(num));
	a = vm_gpa_to_hva(vm, avail, VIRTQ_AVAIL_BYTES(num));
	u = vm_gpa_to_hva(vm, used, VIRTQ_USED_BYTES(num));
	if (!d || !a || !u)
		return -EFAULT;
	*vq = (struct virtq){
		.vm = vm, .num = num, .desc = d, .avail = a, .used = u,
		.event_idx = !!(features & VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX)),
		.indirect = !!(features & VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC)),
	};
	/* Indices start at 0 (2.7.13: the driver zeroes its rings). */
	return 0;
}

/*
 * Copy descriptor `idx` of a table out of guest memory. The table is handled
 * as bytes: an indirect table need not be aligned. The compiler barrier makes
 * sure every later use reads this private copy, never the guest's memory
 * again (the guest could change it between a check and a use).
 */
static void read_desc(const uint8_t *table, uint32_t idx, struct virtq_desc *d)
{
	memcpy(d, table + (size_t)idx * sizeof(*d), sizeof(*d));
	__asm__ __volatile__("" ::: "memory");
}

static int add_segment(struct virtq *vq, const struct virtq_desc *d,
		       struct virtq_elem *e)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	void *hva;

	if (!d->len)
		return 0; /* nothing to read or write: no address to check */
	if (!writable && e->nr_in)
		return -EINVAL; /* readable after writable (2.7.4.2) */
	if (e->nr_out + e->nr_in >= e->max_iov)
		return -E2BIG;
	if (e->out_len + e->in_len + d->len > VIRTQ_MAX_CHAIN_BYTES)
		return -E2BIG;
	hva = vm_gpa_to_hva(vq->vm, d->addr, d->len);
	if (!hva)
		return -EFAULT;
	e->iov[e->nr_out + e->nr_in] = (struct iovec){ hva, d->len };
	if (writable) {
		e->nr_in++;
		e->in_len += d->len;
	} else {
		e->nr_out++;
		e->out_len += d->len;
	}
	return 0;
}

/*
 * Follow a chain through `table` (num entries) from `idx`. A chain visits at
 * most num descriptors; one more step can only be a loop.
 */
static int walk_table(struct virtq *vq, const uint8_t *table, uint32_t num,
		      uint32_t idx, bool indirect_table, struct virtq_elem *e);

static int walk_indirect(struct virtq *vq, const struct virtq_desc *d,
			 struct virtq_elem *e)
{
	const uint8_t *table;

	/* 2.7.5.3: a whole table of 16-byte descriptors, no longer than a
	 * queue may be; one level only (checked by the caller). */
	if (!d->len || d->len % sizeof(struct virtq_desc) ||
	    d->len / sizeof(struct virtq_desc) > VIRTQ_MAX_SIZE)
		return -EINVAL;
	table = vm_gpa_to_hva(vq->vm, d->addr, d->len);
	if (!table)
		return -EFAULT;
	return walk_table(vq, table, d->len / sizeof(struct virtq_desc), 0,
			  true, e);
}

static int walk_table(struct virtq *vq, const uint8_t *table, uint32_t num,
		      uint32_t idx, bool indirect_table, struct virtq_elem *e)
{
	for (uint32_t steps = 0;; steps++) {
		struct virtq_desc d;
		int err;

		if (idx >= num)
			return -EINVAL;
		if (steps >= num)
			return -ELOOP;
		read_desc(table, idx, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* Only as the whole chain of the main ring: not
			 * nested, not offered-off, not mid-chain, no NEXT. */
			if (indirect_table || !vq->indirect || steps ||
			    (d.flags & VIRTQ_DESC_F_NEXT))
				return -EINVAL;
			return walk_indirect(vq, &d, e);
		}
		err = add_segment(vq, &d, e);
		if (err)
			return err;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

int virtq_pop(struct virtq *vq, struct virtq_elem *e)
{
	/* Acquire: the ring entry and descriptors the driver published
	 * before this index are visible once we see the index. */
	uint16_t avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
	uint16_t head;
	int err;

	vq->avail_seen = avail_idx;
	if (!pending)
		return 0;
	if (pending > vq->num)
		return -E2BIG; /* more buffers than the ring holds */
	head = load16(&vq->avail->ring[vq->last_avail & (vq->num - 1)]);
	if (head >= vq->num)
		return -EINVAL;
	e->head = head;
	e->nr_out = e->nr_in = 0;
	e->out_len = e->in_len = 0;
	err = walk_table(vq, (const uint8_t *)vq->desc, vq->num, head, false, e);
	if (err)
		return err;
	vq->last_avail++;
	return 1;
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
}

void virtq_fill(struct virtq *vq, unsigned ahead, uint16_t head, uint32_t len)
{
	uint16_t slot = (uint16_t)(vq->used_idx + ahead) & (vq->num - 1);
	struct virtq_used_elem *u = &vq->used->ring[slot];

	/* Beyond the published index: the driver does not look there yet. */
	__atomic_store_n(&u->id, (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n(&u->len, len, __ATOMIC_RELAXED);
}

void virtq_flush(struct virtq *vq, unsigned count)
{
	vq->used_idx = (uint16_t)(vq->used_idx + count);
	/* Release: the elements and the data written into the buffers are
	 * visible before the driver can see the new index. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	virtq_fill(vq, 0, head, len);
	virtq_flush(vq, 1);
}

bool virtq_need_interrupt(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_valid;

	/* The used index store must be visible before we read the driver's
	 * wishes, or we could miss the moment it re-enabled interrupts. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (old == now)
		return false; /* nothing pushed since the last decision */
	if (!vq->event_idx)
		return !(load16(&vq->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	/* vring_need_event(): did [old, now) cross used_event? */
	return (uint16_t)(now - load16(used_event(vq)) - 1) < (uint16_t)(now - old);
}

void virtq_disable_notify(struct virtq *vq)
{
	/* With EVENT_IDX, simply not moving avail_event suppresses them. */
	if (!vq->event_idx)
		store16(&vq->used->flags, VIRTQ_USED_F_NO_NOTIFY);
}

bool virtq_enable_notify(struct virtq *vq)
{
	/* Not last_avail: behind avail_seen (chains put back), the driver
	 * would see the event index already passed and never notify. */
	if (vq->event_idx)
		store16(avail_event(vq), vq->avail_seen);
	else
		store16(&vq->used->flags, 0);
	/* Publish the request before looking again: a buffer the driver
	 * added just before seeing it would otherwise go unnoticed. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->avail_seen;
}

/* Copy between a flat buffer and the iovec's bytes from `skip` on. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t skip,
		       uint8_t *buf, size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t seg = iov[i].iov_len, chunk;
		uint8_t *base = iov[i].iov_base;

		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		chunk = MIN(seg - skip, len - done);
		if (to_iov)
			memcpy(base + skip, buf + done, chunk);
		else
			memcpy(buf + done, base + skip, chunk);
		done += chunk;
		skip = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf,
		  size_t len)
{
	return iov_copy(iov, n, skip, buf, len, false);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip,
		    const void *buf, size_t len)
{
	/* not written through: to_iov only reads buf */
	return iov_copy(iov, n, skip, (uint8_t *)buf, len, true);
}

unsigned iov_slice(const struct iovec *iov, unsigned n, size_t skip,
		   size_t len, struct iovec *out, unsigned max_out,
		   size_t *got)
{
	unsigned used = 0;
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len && used < max_out; i++) {
		size_t seg = iov[i].iov_len, chunk;

		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		chunk = MIN(seg - skip, len - done);
		out[used++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, chunk };
		done += chunk;
		skip = 0;
	}
	*got = done;
	return used;
}
