/* SPDX-License-Identifier: MIT */
/*
 * ARM PrimeCell PL031 real-time clock: a seconds counter that follows the
 * host's wall clock from the value the guest last loaded, so an arm64 guest
 * knows the date at boot (Linux's rtc-pl031 sets the system time from it).
 * Linux's AMBA bus finds it by the PrimeCell id registers at the end of
 * its 4 KiB window. The match interrupt is not wired: nothing in a guest's
 * boot waits for an alarm, and an RTC alarm is no way to keep time.
 *
 * Snapshot payload (little-endian; pl031_save / pl031_load):
 *   u32 "P031" magic, s64 guest seconds minus host seconds (the clock
 *   keeps following the host's wall clock after a restore, as a battery
 *   clock would), u32 match register, u32 interrupt mask (0/1)
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/snapfile.h"
#include "vm.h"

#define PL031_DR 0x000   /* data: the current seconds */
#define PL031_MR 0x004   /* match */
#define PL031_LR 0x008   /* load: sets the seconds */
#define PL031_CR 0x00c   /* control: bit 0 starts the counter */
#define PL031_IMSC 0x010 /* interrupt mask */
#define PL031_RIS 0x014  /* raw interrupt status */
#define PL031_MIS 0x018  /* masked interrupt status */
#define PL031_ICR 0x01c  /* interrupt clear */
#define PL031_ID 0xfe0   /* PeriphID0-3, PCellID0-3: one byte per word */

/* Part 0x031, designer 0x41 (ARM), revision 0; the PrimeCell signature. */
static const uint8_t pl031_id[8] = { 0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

struct pl031 {
	struct device dev;
	pthread_mutex_t lock;
	int64_t offset; /* guest seconds - host seconds */
	uint32_t match, imsc;
};

static int64_t host_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static uint32_t read_reg(struct pl031 *r, uint64_t offset)
{
	if (offset >= PL031_ID && offset < PL031_ID + 4 * sizeof(pl031_id))
		return (offset & 3) ? 0 : pl031_id[(offset - PL031_ID) / 4];
	switch (offset) {
	case PL031_DR:
		return (uint32_t)(host_seconds() + r->offset);
	case PL031_MR:
		return r->match;
	case PL031_CR:
		return 1; /* always counting */
	case PL031_IMSC:
		return r->imsc;
	default:
		return 0; /* LR reads 0 here; RIS/MIS: no alarms */
	}
}

static void write_reg(struct pl031 *r, uint64_t offset, uint32_t value)
{
	switch (offset) {
	case PL031_LR:
		r->offset = (int64_t)value - host_seconds();
		break;
	case PL031_MR:
		r->match = value;
		break;
	case PL031_IMSC:
		r->imsc = value & 1;
		break;
	default:
		break; /* CR: the counter cannot be stopped; ICR: nothing pending */
	}
}

static int pl031_read(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct pl031 *r = dev->private;
	uint32_t v;

	pthread_mutex_lock(&r->lock);
	v = read_reg(r, offset);
	pthread_mutex_unlock(&r->lock);
	memset(data, 0, size);
	memcpy(data, &v, size < sizeof(v) ? size : sizeof(v));
	return 0;
}

static int pl031_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct pl031 *r = dev->private;
	uint32_t v = 0;

	memcpy(&v, data, size < sizeof(v) ? size : sizeof(v));
	pthread_mutex_lock(&r->lock);
	write_reg(r, offset, v);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

#define SNAP_MAGIC_PL031 0x31333050u /* "P031" */
/* Far beyond any 32-bit value loaded minus any host time, far from where
 * host seconds + offset would overflow. */
#define PL031_MAX_OFFSET (1LL << 40)

static int pl031_save(struct device *dev, struct snap_buf *out)
{
	struct pl031 *r = dev->private;

	pthread_mutex_lock(&r->lock);
	snap_put_u32(out, SNAP_MAGIC_PL031);
	snap_put_u64(out, (uint64_t)r->offset);
	snap_put_u32(out, r->match);
	snap_put_u32(out, r->imsc);
	pthread_mutex_unlock(&r->lock);
	return out->failed ? -ENOMEM : 0;
}

static int pl031_load(struct device *dev, struct snap_cursor *in)
{
	struct pl031 *r = dev->private;
	uint32_t magic = snap_get_u32(in), match, imsc;
	int64_t offset = (int64_t)snap_get_u64(in);

	match = snap_get_u32(in);
	imsc = snap_get_u32(in);
	if (magic != SNAP_MAGIC_PL031 || !snap_cursor_done(in) || imsc > 1 ||
	    offset > PL031_MAX_OFFSET || offset < -PL031_MAX_OFFSET)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	r->offset = offset;
	r->match = match;
	r->imsc = imsc;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void pl031_destroy(struct device *dev)
{
	struct pl031 *r = dev->private;

	pthread_mutex_destroy(&r->lock);
	free(r);
}

struct device *pl031_create(uint64_t base)
{
	struct pl031 *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->dev = (struct device){
		.name = "pl031", .base = base, .size = PL031_SIZE, .private = r,
		.read = pl031_read, .write = pl031_write, .destroy = pl031_destroy,
		.space = DEVICE_MMIO,
		.save = pl031_save, .load = pl031_load,
	};
	return &r->dev;
}
