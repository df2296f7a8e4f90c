/* SPDX-License-Identifier: MIT */
/*
 * A minimal i8042 keyboard controller with nothing plugged in.
 *
 * Why: Linux's `reboot=k` (and its last-resort reboot) pulses the reset line
 * with command 0xFE on port 0x64, and a kernel told an i8042 exists probes
 * it by polling the status port. Every controller command Linux sends during
 * that probe gets an immediate answer, so no poll runs into the driver's
 * half-second timeout:
 *   - self-test 0xAA -> 0x55, keyboard interface test 0xAB -> 0x00;
 *   - command byte read (0x20) / write (0x60), port enable/disable bits;
 *   - there is no AUX (mouse) port: the loop-back 0xD3 answers as keyboard
 *     data and the AUX test 0xA9 reports a stuck clock line, which is how
 *     Linux recognises a controller without one.
 * A keyboard answers just enough for Linux's atkbd to bind (every command
 * byte is acknowledged with 0xFA; GET ID and RESET get their replies), so
 * that i8042_send_ctrl_alt_del() can press Ctrl+Alt+Del for the API's
 * SendCtrlAltDel: keyboard bytes queue up and each raises IRQ 1 while the
 * guest has keyboard interrupts on. Ports 0x61-0x63 are inside the range only because the range
 * is contiguous; they read 0 (KVM's in-kernel PIT answers port 0x61 itself).
 *
 * Snapshot payload (little-endian; i8042_save / i8042_load):
 *   u32 "8042" magic
 *   u8 command byte, output port, command waiting for its data byte (0 or
 *   one of the five that take one), output buffer, output buffer full (0/1)
 *   u8 keyboard bytes queued behind the output buffer (<= 16), then those
 *   bytes, next first
 * Interrupts are edges sent with each byte, so there is no line to save.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "devices.h"
#include "utils.h"
#include "vm.h"

#define I8042_DATA 0   /* port 0x60 */
#define I8042_STATUS 4 /* port 0x64: status on read, command on write */

#define STR_OBF 0x01 /* output buffer full */
#define STR_KEYLOCK 0x10 /* set: the keyboard is not locked (inhibited) */

#define CTR_KBDINT 0x01
#define CTR_SYSFLAG 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40
#define CTR_DEFAULT (CTR_XLATE | CTR_AUXDIS | CTR_SYSFLAG | CTR_KBDINT)

#define OUTPORT_RESET_N 0x01 /* 0 holds the CPU in reset */
#define OUTPORT_A20 0x02
#define OUTPORT_DEFAULT (OUTPORT_A20 | OUTPORT_RESET_N)

enum i8042_cmd {
	CMD_READ_CTR = 0x20,
	CMD_WRITE_CTR = 0x60,
	CMD_AUX_DISABLE = 0xa7,
	CMD_AUX_ENABLE = 0xa8,
	CMD_AUX_TEST = 0xa9,
	CMD_SELF_TEST = 0xaa,
	CMD_KBD_TEST = 0xab,
	CMD_KBD_DISABLE = 0xad,
	CMD_KBD_ENABLE = 0xae,
	CMD_READ_OUTPORT = 0xd0,
	CMD_WRITE_OUTPORT = 0xd1,
	CMD_WRITE_KBD_OUT = 0xd2,
	CMD_WRITE_AUX_OUT = 0xd3,
	CMD_WRITE_AUX = 0xd4,
	CMD_PULSE_BASE = 0xf0, /* 0xf0-0xff: pulse output lines low */
};

#define I8042_IRQ 1
#define KBD_QUEUE 16
#define KBD_ACK 0xfa
#define KBD_CMD_GET_ID 0xf2
#define KBD_CMD_RESET 0xff
#define KBD_BAT_OK 0xaa

#define SELF_TEST_OK 0x55
#define PORT_TEST_OK 0x00
#define PORT_TEST_CLOCK_LOW 0x01

struct i8042 {
	struct device dev;
	pthread_mutex_t lock; /* vCPUs may poll it concurrently */
	uint8_t ctr;          /* controller command byte */
	uint8_t outport;
	uint8_t pending;      /* command waiting for its data byte, 0 if none */
	uint8_t out;          /* output buffer */
	bool out_full;
	uint8_t kbd[KBD_QUEUE]; /* keyboard bytes behind the output buffer */
	unsigned kbd_head, kbd_len;
};

/* Move the next keyboard byte into an empty output buffer; true when the
 * guest wants an interrupt for it. */
static bool kbd_feed(struct i8042 *k)
{
	if (k->out_full || !k->kbd_len)
		return false;
	k->out = k->kbd[k->kbd_head];
	k->out_full = true;
	k->kbd_head = (k->kbd_head + 1) % KBD_QUEUE;
	k->kbd_len--;
	return (k->ctr & CTR_KBDINT) && !(k->ctr & CTR_KBDDIS);
}

static void kbd_push(struct i8042 *k, const uint8_t *bytes, unsigned n)
{
	for (unsigned i = 0; i < n && k->kbd_len < KBD_QUEUE; i++)
		k->kbd[(k->kbd_head + k->kbd_len++) % KBD_QUEUE] = bytes[i];
}

/* An edge on IRQ 1 (outside the lock). */
static void kbd_irq(struct device *dev)
{
	vm_irq_line(dev->vm, I8042_IRQ, 1);
	vm_irq_line(dev->vm, I8042_IRQ, 0);
}

/* A byte for the keyboard: acknowledged, and answered where Linux waits
 * for more. */
static void kbd_command(struct i8042 *k, uint8_t v)
{
	static const uint8_t id[] = { KBD_ACK, 0xab, 0x83 }, reset[] = { KBD_ACK, KBD_BAT_OK };
	static const uint8_t ack = KBD_ACK;

	if (v == KBD_CMD_GET_ID)
		kbd_push(k, id, sizeof(id));
	else if (v == KBD_CMD_RESET)
		kbd_push(k, reset, sizeof(reset));
	else
		kbd_push(k, &ack, 1);
}

static void i8042_output(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = true;
}

static uint8_t i8042_read_port(struct i8042 *k, uint64_t offset)
{
	switch (offset) {
	case I8042_DATA:
		k->out_full = false;
		return k->out;
	case I8042_STATUS:
		return STR_KEYLOCK | (k->out_full ? STR_OBF : 0);
	default:
		return 0;
	}
}

/* Returns true when the command resets the machine. */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		i8042_output(k, k->ctr);
		break;
	case CMD_AUX_DISABLE:
		k->ctr |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
		i8042_output(k, PORT_TEST_CLOCK_LOW);
		break;
	case CMD_SELF_TEST:
		i8042_output(k, SELF_TEST_OK);
		break;
	case CMD_KBD_TEST:
		i8042_output(k, PORT_TEST_OK);
		break;
	case CMD_KBD_DISABLE:
		k->ctr |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case CMD_READ_OUTPORT:
		i8042_output(k, k->outport);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPORT:
	case CMD_WRITE_KBD_OUT:
	case CMD_WRITE_AUX_OUT:
	case CMD_WRITE_AUX:
		k->pending = cmd;
		break;
	default:
		/* Pulse commands: bit 0 clear pulses the reset line (0xFE). */
		return cmd >= CMD_PULSE_BASE && !(cmd & OUTPORT_RESET_N);
	}
	return false;
}

/* A byte on the data port: the parameter of a pending command, or a byte
 * for the (absent) keyboard. Returns true when it resets the machine. */
static bool i8042_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	switch (cmd) {
	case CMD_WRITE_CTR:
		k->ctr = v;
		break;
	case CMD_WRITE_OUTPORT:
		k->outport = v;
		return !(v & OUTPORT_RESET_N);
	case CMD_WRITE_KBD_OUT:
	case CMD_WRITE_AUX_OUT: /* no AUX port: echo it as keyboard data */
		i8042_output(k, v);
		break;
	case CMD_WRITE_AUX: /* no AUX device: nobody is listening */
		break;
	default:
		kbd_command(k, v);
		break;
	}
	return false;
}

static int i8042_read(struct device *dev, uint64_t offset, void *data,
		      size_t size)
{
	struct i8042 *k = dev->private;
	bool irq;
	uint8_t v;

	pthread_mutex_lock(&k->lock);
	v = i8042_read_port(k, offset);
	irq = kbd_feed(k);
	pthread_mutex_unlock(&k->lock);
	if (irq)
		kbd_irq(dev);
	memset(data, 0, size);
	if (size)
		memcpy(data, &v, 1);
	return 0;
}

static int i8042_write(struct device *dev, uint64_t offset, void *data,
		       size_t size)
{
	struct i8042 *k = dev->private;
	bool reset = false, irq;
	uint8_t v;

	if (size == 0)
		return 0;
	memcpy(&v, data, 1);
	pthread_mutex_lock(&k->lock);
	if (offset == I8042_STATUS)
		reset = i8042_command(k, v);
	else if (offset == I8042_DATA)
		reset = i8042_data(k, v);
	irq = kbd_feed(k);
	pthread_mutex_unlock(&k->lock);
	if (irq)
		kbd_irq(dev);
	/* Outside the lock: the exit request may wake other threads. */
	if (reset) {
		vm_info(dev->vm, "i8042: the guest pulsed the reset line");
		vm_request_exit(dev->vm, VCPU_EXIT_RESET, 0);
	}
	return 0;
}

int i8042_send_ctrl_alt_del(struct device *dev)
{
	/* Press Ctrl, Alt, Delete; release them. Set 1 when the controller
	 * translates (the command byte's XLATE bit, Linux's default), else
	 * the keyboard's own set 2. */
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71,
					0xf0, 0x11, 0xf0, 0x14 };
	struct i8042 *k;
	bool irq;

	if (!dev || dev->read != i8042_read)
		return -EINVAL;
	k = dev->private;
	pthread_mutex_lock(&k->lock);
	if (k->ctr & CTR_XLATE)
		kbd_push(k, set1, sizeof(set1));
	else
		kbd_push(k, set2, sizeof(set2));
	irq = kbd_feed(k);
	pthread_mutex_unlock(&k->lock);
	if (irq)
		kbd_irq(dev);
	return 0;
}

/* ---- snapshots ---- */

#define SNAP_MAGIC_8042 0x32343038u /* "8042" */

static int i8042_save(struct device *dev, struct snap_buf *out)
{
	struct i8042 *k = dev->private;

	pthread_mutex_lock(&k->lock);
	snap_put_u32(out, SNAP_MAGIC_8042);
	snap_put_u8(out, k->ctr);
	snap_put_u8(out, k->outport);
	snap_put_u8(out, k->pending);
	snap_put_u8(out, k->out);
	snap_put_u8(out, k->out_full);
	snap_put_u8(out, (uint8_t)k->kbd_len);
	for (unsigned i = 0; i < k->kbd_len; i++)
		snap_put_u8(out, k->kbd[(k->kbd_head + i) % KBD_QUEUE]);
	pthread_mutex_unlock(&k->lock);
	return out->failed ? -ENOMEM : 0;
}

/* The commands i8042_command leaves waiting for a data byte. */
static bool pending_ok(uint8_t cmd)
{
	return cmd == 0 || cmd == CMD_WRITE_CTR || cmd == CMD_WRITE_OUTPORT ||
	       cmd == CMD_WRITE_KBD_OUT || cmd == CMD_WRITE_AUX_OUT || cmd == CMD_WRITE_AUX;
}

/* A payload's state, checked, before it is applied. */
struct i8042_snap {
	uint8_t ctr, outport, pending, out;
	bool out_full;
	uint8_t kbd[KBD_QUEUE]; /* next first */
	unsigned kbd_len;
};

static int i8042_parse(struct snap_cursor *in, struct i8042_snap *st)
{
	uint8_t full;

	if (snap_get_u32(in) != SNAP_MAGIC_8042)
		return -EINVAL;
	st->ctr = snap_get_u8(in);
	st->outport = snap_get_u8(in);
	st->pending = snap_get_u8(in);
	st->out = snap_get_u8(in);
	full = snap_get_u8(in);
	st->kbd_len = snap_get_u8(in);
	if (in->bad || !pending_ok(st->pending) || full > 1 || st->kbd_len > KBD_QUEUE)
		return -EINVAL;
	st->out_full = full;
	snap_get_bytes(in, st->kbd, st->kbd_len);
	return snap_cursor_done(in) ? 0 : -EINVAL;
}

static int i8042_load(struct device *dev, struct snap_cursor *in)
{
	struct i8042 *k = dev->private;
	struct i8042_snap st;
	int err = i8042_parse(in, &st);

	if (err)
		return err;
	pthread_mutex_lock(&k->lock);
	k->ctr = st.ctr;
	k->outport = st.outport;
	k->pending = st.pending;
	k->out = st.out;
	k->out_full = st.out_full;
	memcpy(k->kbd, st.kbd, st.kbd_len);
	k->kbd_head = 0;
	k->kbd_len = st.kbd_len;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_destroy(struct device *dev)
{
	struct i8042 *k = dev->private;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

struct device *i8042_create(void)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	if (pthread_mutex_init(&k->lock, NULL)) {
		free(k);
		return NULL;
	}
	k->ctr = CTR_DEFAULT;
	k->outport = OUTPORT_DEFAULT;
	k->dev = (struct device){
		.name = "i8042", .base = I8042_BASE_PORT, .size = I8042_NR_PORTS,
		.private = k, .read = i8042_read, .write = i8042_write,
		.destroy = i8042_destroy, .space = DEVICE_PIO,
		.save = i8042_save, .load = i8042_load,
	};
	return &k->dev;
}
