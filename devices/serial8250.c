/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART. Transmission is instantaneous (bytes go to the VM's output
 * stream for out_fd, which never blocks), so THR is always empty; input
 * comes from in_fd through the VM's I/O thread into a receive buffer the
 * guest drains through RBR. A full buffer pauses the input watch; the
 * guest's reads resume it.
 *
 * Snapshot payload (little-endian; serial_save / serial_load):
 *   u32 "8250" magic
 *   u8 IER, LCR, MCR, LSR error bits (only OE), SCR, FCR, DLL, DLM
 *   u8 THR-empty interrupt pending (0/1), u8 interrupt line (0/1: must be
 *   what the registers say)
 *   u16 bytes in the receive buffer (<= 4096), then those bytes, oldest
 *   first
 * IIR, the rest of LSR and MSR follow from these (read_reg).
 * The receive buffer is 4096 bytes, not a 16550A's 16: host input waits
 * there for the guest (see above), so a snapshot keeps all of it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/snapfile.h"
#include "devices.h"
#include "vm.h"

enum {
	REG_RBR_THR = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3,
	REG_MCR = 4, REG_LSR = 5, REG_MSR = 6, REG_SCR = 7,
};

#define IER_RDI 0x01   /* received data available */
#define IER_THRI 0x02  /* transmitter holding register empty */
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ON 0xc0
#define FCR_FIFO_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_DCD 0x80

#define RX_BUF_SIZE 4096

struct serial8250 {
	struct device dev;
	pthread_mutex_t lock;
	uint32_t irq;
	int in_fd;
	struct vm_output *out; /* NULL: output dropped */
	bool input_paused;
	int (*filter)(void *opaque, uint8_t *buf, int len);
	void *filter_opaque;

	uint8_t ier, lcr, mcr, lsr_extra, scr, fcr, dll, dlm;
	bool thri_pending; /* THR-empty interrupt armed until IIR reports it */
	int irq_level;

	uint8_t rx[RX_BUF_SIZE];
	size_t rx_head, rx_len;
};

static uint8_t iir_of(uint8_t ier, size_t rx_len, bool thri_pending)
{
	if ((ier & IER_RDI) && rx_len)
		return IIR_RDI;
	if ((ier & IER_THRI) && thri_pending)
		return IIR_THRI;
	return IIR_NO_INT;
}

static uint8_t pending_iir(const struct serial8250 *s)
{
	return iir_of(s->ier, s->rx_len, s->thri_pending);
}

/* Drive the interrupt line from the state; pulse gives the (edge-triggered)
 * IOAPIC a fresh edge for a new event while the line was already high. */
static void update_irq(struct serial8250 *s, bool pulse)
{
	int level = pending_iir(s) != IIR_NO_INT;

	if (pulse && level && s->irq_level) {
		vm_irq_line(s->dev.vm, s->irq, 0);
		s->irq_level = 0;
	}
	if (level != s->irq_level) {
		vm_irq_line(s->dev.vm, s->irq, level);
		s->irq_level = level;
	}
}

static void rx_push(struct serial8250 *s, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s->rx_len == RX_BUF_SIZE) {
			s->lsr_extra |= LSR_OE;
			return;
		}
		s->rx[(s->rx_head + s->rx_len++) % RX_BUF_SIZE] = buf[i];
	}
}

/* Room again: let the I/O thread read more input. */
static void maybe_resume_input(struct serial8250 *s)
{
	if (s->input_paused && s->rx_len < RX_BUF_SIZE / 2) {
		s->input_paused = false;
		vm_resume_fd(s->dev.vm, s->in_fd);
	}
}

static uint8_t rx_pop(struct serial8250 *s)
{
	uint8_t c;

	if (!s->rx_len)
		return 0;
	c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % RX_BUF_SIZE;
	s->rx_len--;
	maybe_resume_input(s);
	return c;
}

static void transmit(struct serial8250 *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		rx_push(s, &c, 1);
		return;
	}
	vm_output_write(s->out, &c, 1);
}

static uint8_t modem_status(const struct serial8250 *s)
{
	uint8_t m = s->mcr;

	if (!(m & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
	return (uint8_t)(((m & 0x01) << 5) | ((m & 0x02) << 3) |
			 ((m & 0x04) << 4) | ((m & 0x08) << 4));
}

static uint8_t read_reg(struct serial8250 *s, unsigned reg)
{
	uint8_t v;

	switch (reg) {
	case REG_RBR_THR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		v = rx_pop(s);
		update_irq(s, false);
		return v;
	case REG_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR_FCR:
		v = pending_iir(s);
		if (v == IIR_THRI) { /* reading IIR acknowledges THRI */
			s->thri_pending = false;
			update_irq(s, false);
		}
		return v | ((s->fcr & FCR_FIFO_ENABLE) ? IIR_FIFO_ON : 0);
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		v = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0) | s->lsr_extra;
		s->lsr_extra = 0;
		return v;
	case REG_MSR:
		return modem_status(s);
	default:
		return s->scr;
	}
}

static void write_reg(struct serial8250 *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case REG_RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			return;
		}
		transmit(s, v);
		s->thri_pending = true; /* sent at once: THR empty again */
		update_irq(s, true);
		return;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			return;
		}
		/* Enabling THRI with THR empty raises it at once, as on hardware. */
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thri_pending = true;
		s->ier = v & 0x0f;
		update_irq(s, false);
		return;
	case REG_IIR_FCR:
		s->fcr = v;
		if (v & FCR_CLEAR_RX) {
			s->rx_len = 0;
			maybe_resume_input(s);
		}
		update_irq(s, false);
		return;
	case REG_LCR:
		s->lcr = v;
		return;
	case REG_MCR:
		s->mcr = v & 0x1f;
		return;
	case REG_SCR:
		s->scr = v;
		return;
	default:
		return; /* LSR, MSR: read-only */
	}
}

static int serial_read(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct serial8250 *s = dev->private;

	memset(data, 0, size);
	pthread_mutex_lock(&s->lock);
	((uint8_t *)data)[0] = read_reg(s, (unsigned)offset);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int serial_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct serial8250 *s = dev->private;

	pthread_mutex_lock(&s->lock);
	write_reg(s, (unsigned)offset, ((uint8_t *)data)[0]);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* I/O thread: host input is readable. */
static int serial_input_ready(void *opaque)
{
	struct serial8250 *s = opaque;
	uint8_t buf[256];
	ssize_t n;
	size_t room;
	int len;

	pthread_mutex_lock(&s->lock);
	room = RX_BUF_SIZE - s->rx_len;
	if (!room) {
		s->input_paused = true;
		pthread_mutex_unlock(&s->lock);
		return VM_WATCH_PAUSE;
	}
	pthread_mutex_unlock(&s->lock);

	n = read(s->in_fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return VM_WATCH_KEEP;
	if (n <= 0)
		return VM_WATCH_DROP; /* EOF: no more input, the guest runs on */
	len = s->filter ? s->filter(s->filter_opaque, buf, (int)n) : (int)n;

	pthread_mutex_lock(&s->lock);
	rx_push(s, buf, (size_t)(len > 0 ? len : 0));
	update_irq(s, false);
	pthread_mutex_unlock(&s->lock);
	return VM_WATCH_KEEP;
}

/* ---- snapshots ---- */

#define SNAP_MAGIC_8250 0x30353238u /* "8250" */
#define IER_MASK 0x0f
#define MCR_MASK 0x1f

/* What a payload holds, checked, before it is applied. */
struct serial_snap {
	uint8_t ier, lcr, mcr, lsr_extra, scr, fcr, dll, dlm;
	bool thri_pending;
	int irq_level;
	uint16_t rx_len;
	uint8_t rx[RX_BUF_SIZE];
};

static int serial_save(struct device *dev, struct snap_buf *out)
{
	struct serial8250 *s = dev->private;

	pthread_mutex_lock(&s->lock);
	snap_put_u32(out, SNAP_MAGIC_8250);
	snap_put_u8(out, s->ier);
	snap_put_u8(out, s->lcr);
	snap_put_u8(out, s->mcr);
	snap_put_u8(out, s->lsr_extra);
	snap_put_u8(out, s->scr);
	snap_put_u8(out, s->fcr);
	snap_put_u8(out, s->dll);
	snap_put_u8(out, s->dlm);
	snap_put_u8(out, s->thri_pending);
	snap_put_u8(out, (uint8_t)s->irq_level);
	snap_put_u16(out, (uint16_t)s->rx_len);
	for (size_t i = 0; i < s->rx_len; i++)
		snap_put_u8(out, s->rx[(s->rx_head + i) % RX_BUF_SIZE]);
	pthread_mutex_unlock(&s->lock);
	return out->failed ? -ENOMEM : 0;
}

static bool is_bool(uint8_t v)
{
	return v <= 1;
}

/* Every value one this UART could have had: masked registers within
 * their masks, the line as the registers drive it. */
static int serial_parse(struct snap_cursor *in, struct serial_snap *st)
{
	uint8_t thri, line;

	if (snap_get_u32(in) != SNAP_MAGIC_8250)
		return -EINVAL;
	st->ier = snap_get_u8(in);
	st->lcr = snap_get_u8(in);
	st->mcr = snap_get_u8(in);
	st->lsr_extra = snap_get_u8(in);
	st->scr = snap_get_u8(in);
	st->fcr = snap_get_u8(in);
	st->dll = snap_get_u8(in);
	st->dlm = snap_get_u8(in);
	thri = snap_get_u8(in);
	line = snap_get_u8(in);
	st->rx_len = snap_get_u16(in);
	if (in->bad || (st->ier & ~IER_MASK) || (st->mcr & ~MCR_MASK) ||
	    (st->lsr_extra & ~LSR_OE) || !is_bool(thri) || !is_bool(line) ||
	    st->rx_len > RX_BUF_SIZE)
		return -EINVAL;
	snap_get_bytes(in, st->rx, st->rx_len);
	st->thri_pending = thri;
	st->irq_level = line;
	if (!snap_cursor_done(in) ||
	    line != (iir_of(st->ier, st->rx_len, st->thri_pending) != IIR_NO_INT))
		return -EINVAL;
	return 0;
}

static int serial_load(struct device *dev, struct snap_cursor *in)
{
	struct serial8250 *s = dev->private;
	struct serial_snap st;
	int err = serial_parse(in, &st);

	if (err)
		return err;
	pthread_mutex_lock(&s->lock);
	s->ier = st.ier, s->lcr = st.lcr, s->mcr = st.mcr;
	s->lsr_extra = st.lsr_extra, s->scr = st.scr, s->fcr = st.fcr;
	s->dll = st.dll, s->dlm = st.dlm;
	s->thri_pending = st.thri_pending;
	memcpy(s->rx, st.rx, st.rx_len);
	s->rx_head = 0;
	s->rx_len = st.rx_len;
	/* s->irq_level is where this process's line is: drive it from there
	 * to the level the registers ask for (the saved one). */
	update_irq(s, false);
	maybe_resume_input(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void serial_destroy(struct device *dev)
{
	struct serial8250 *s = dev->private;

	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The same UART on either bus: registers at base + 0..7 (one byte apart). */
static struct device *create(struct vm *vm, enum device_space space, uint64_t base,
			     uint32_t irq, int in_fd, int out_fd)
{
	struct serial8250 *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (out_fd >= 0 && !(s->out = vm_output_open(vm, out_fd))) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->irq = irq;
	s->in_fd = in_fd;
	s->dev = (struct device){
		.name = "serial8250", .base = base, .size = SERIAL8250_SIZE, .private = s,
		.read = serial_read, .write = serial_write,
		.destroy = serial_destroy, .space = space,
		.save = serial_save, .load = serial_load,
	};
	return &s->dev;
}

struct device *serial8250_create(struct vm *vm, uint16_t port, uint32_t irq,
				 int in_fd, int out_fd)
{
	return create(vm, DEVICE_PIO, port, irq, in_fd, out_fd);
}

struct device *serial8250_create_mmio(struct vm *vm, uint64_t base, uint32_t irq,
				      int in_fd, int out_fd)
{
	return create(vm, DEVICE_MMIO, base, irq, in_fd, out_fd);
}

int serial8250_attach_input(struct device *dev,
			    int (*filter)(void *opaque, uint8_t *buf, int len),
			    void *opaque)
{
	struct serial8250 *s = dev->private;

	if (!dev->vm || s->in_fd < 0)
		return -EINVAL;
	s->filter = filter;
	s->filter_opaque = opaque;
	return vm_watch_fd(dev->vm, s->in_fd, serial_input_ready, s);
}
