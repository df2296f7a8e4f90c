/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "machine.h"
#include "utils.h"
#include "vm.h"

/* The options, with what this arch's machine does filled in. */
static const char usage_format[] =
	"Usage: vibevmm [OPTIONS]\n"
	"Run a virtual machine on KVM (%s).\n"
	"\n"
	"Guest (one of):\n"
	"  --kernel FILE        Linux kernel: %s\n"
	"  --binary FILE        raw binary, loaded at --entry and started in %s\n"
	"Options:\n"
	"  --entry ADDR         load and entry address of --binary (default 0x%llx)\n"
	"  --initrd FILE        initial ramdisk for --kernel\n"
	"  --cmdline STRING     kernel command line (x86: with acpi=off in it, the virtio\n"
	"                       devices are listed there, else only in ACPI)\n"
	"  --mem SIZE           guest RAM, e.g. 512M, 1G (default 256M)\n"
	"  --cpus N             number of vCPUs (default 1, at most %d)\n"
	"  --disk path=FILE[,ro=on|off][,num_queues=N][,cache=none|host][,aio=io_uring|sync]\n"
	"                       virtio block device on a raw image file or a block\n"
	"                       device (repeatable; a comma in FILE is written ',,';\n"
	"                       the older form PATH[,ro] works too). num_queues: request\n"
	"                       queues (default one per vCPU); cache=none: O_DIRECT\n"
	"                       (default host: the page cache); aio=sync: one request\n"
	"                       at a time (default io_uring, falling back to sync)\n"
	"  --net tap=IF[,mac=MAC][,vhost=on|off][,queues=N]  virtio network device on a TAP\n"
	"                       interface (repeatable; default MAC derived from the\n"
	"                       TAP name; vhost=on: frames move in the kernel,\n"
	"                       through /dev/vhost-net; queues: queue pairs, default\n"
	"                       one per vCPU up to 8, on a TAP made multi_queue)\n"
	"  --vsock cid=N,uds=PATH  virtio-vsock, guest CID N (3 or more), bridged to\n"
	"                       Unix sockets as Firecracker's: host clients connect\n"
	"                       to PATH and write 'CONNECT <port>\\n'; guest connections\n"
	"                       to CID 2 port P go to PATH_P\n"
	"  --console serial|virtio  guest console device (default serial)\n"
	"  --pci                x86: a PCI bus for a Linux guest (host bridge 00:00.0,\n"
	"                       ECAM and BAR windows in ACPI)\n"
	"  --transport mmio|pci  how the virtio devices attach (default mmio): pci\n"
	"                       (x86) makes each a virtio-pci function from 00:01.0 on,\n"
	"                       with MSI-X interrupts; implies --pci\n"
	"  --vfio DEV           x86: give the guest the host PCI device DEV (an address\n"
	"                       like 0000:01:00.0, or its sysfs path) through VFIO: it\n"
	"                       must be bound to vfio-pci (scripts/vfio-bind.sh) and\n"
	"                       have MSI-X; repeatable (8 at most); implies --pci\n"
	"  --exit-port          %s: a write ends the VM, the value is the\n"
	"                       exit status (always on for --binary)\n"
	"  --debugcon           MMIO debug console at 0x%llx: bytes written there go\n"
	"                       to stdout (always on for --binary)\n"
	"  --bzimage-as-is      x86: boot a bzImage through its own decompressor\n"
	"  --no-pvh             x86: enter a PVH ELF at its 64-bit Linux entry, not PVH\n"
	"  --no-seccomp         run without the system-call sandbox (seccomp)\n"
	"  --no-kernel-cache    x86: always decompress a bzImage; else its payload is\n"
	"                       kept decompressed in $XDG_CACHE_HOME/vibevmm/kernels\n"
	"                       (~/.cache/vibevmm/kernels) for the next boot\n"
	"  --stats              at the end, the guest's exits on stderr: per reason\n"
	"                       and per device (unclaimed addresses too), per vCPU\n"
	"  --log LEVEL          0 silent, 1 errors, 2 warnings (default), 3 info, 4 debug\n"
	"Driving it like Firecracker (instead of --kernel/--binary):\n"
	"  --api-sock PATH      serve Firecracker's HTTP API on a Unix socket (0600); the\n"
	"                       VM starts on PUT /actions InstanceStart\n"
	"  --config-file FILE   start at once from a Firecracker JSON config file\n"
	"  --no-api             no API socket (with --config-file)\n"
	"Snapshots (x86_64):\n"
	"  --snapshot-on-signal DIR  on SIGUSR1, pause the VM, save it to DIR/state and\n"
	"                       DIR/mem (created at start), and let it go on\n"
	"  --restore DIR        instead of --kernel/--binary: the VM saved in DIR, built\n"
	"                       again from the options it was saved with, going on\n"
	"                       where it was\n"
	"  --read-memory        with --restore: read the memory file into the guest's\n"
	"                       RAM instead of mapping it copy-on-write (the file may\n"
	"                       then change or go; each VM pays for all its RAM)\n"
	"  --net-override KEY=TAP  with --restore: the interface saved on TAP KEY (or\n"
	"                       with iface_id KEY) goes on TAP instead; repeatable\n"
	"  --disk-override KEY=PATH  with --restore: the disk saved at path KEY (or\n"
	"                       with drive_id KEY) is opened at PATH instead; repeatable\n"
	"  --metrics-path FILE  Firecracker's metrics (also with --kernel): a JSON line\n"
	"                       every 60 s, on FlushMetrics and at the end\n"
	"  --id ID              the instance id GET / reports (1-64 of A-Z a-z 0-9 -;\n"
	"                       default anonymous-instance)\n"
	"  -h, --help           this text\n"
	"  -V, --version        version\n"
	"\n"
	"Console: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A.\n"
	"Exit status: the guest's exit-port value; 0 after HLT, a poweroff or reboot\n"
	"(%s) or Ctrl-A x; 128+N when signal N stopped it (130 SIGINT,\n"
	"143 SIGTERM, 129 SIGHUP); 1 on a start-up error; 2 when the guest crashed\n"
	"(an exit the VMM cannot handle, e.g. an x86 triple fault) or reported a\n"
	"panic (x86: pvpanic).\n";

void cli_print_usage(FILE *f)
{
	const struct machine_info *m = machine_info();

	fprintf(f, usage_format, m->arch, m->kernel_formats, m->raw_start,
		(unsigned long long)machine_raw_default_entry(), machine_max_cpus(),
		m->exit_device, (unsigned long long)m->debugcon_addr, m->ends_guest);
}

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS, OPT_DISK,
	OPT_NET, OPT_CONSOLE, OPT_BINARY, OPT_ENTRY, OPT_LOG, OPT_AS_IS,
	OPT_NO_PVH, OPT_EXIT_PORT, OPT_DEBUGCON, OPT_NO_SECCOMP, OPT_STATS,
	OPT_NO_KERNEL_CACHE, OPT_API_SOCK, OPT_CONFIG_FILE, OPT_NO_API, OPT_VSOCK,
	OPT_METRICS_PATH, OPT_ID, OPT_RESTORE, OPT_SNAPSHOT_ON_SIGNAL, OPT_NET_OVERRIDE,
	OPT_DISK_OVERRIDE, OPT_PCI, OPT_READ_MEMORY, OPT_TRANSPORT, OPT_VFIO,
};

static const struct option long_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "vsock", required_argument, NULL, OPT_VSOCK },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "binary", required_argument, NULL, OPT_BINARY },
	{ "entry", required_argument, NULL, OPT_ENTRY },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "bzimage-as-is", no_argument, NULL, OPT_AS_IS },
	{ "no-pvh", no_argument, NULL, OPT_NO_PVH },
	{ "exit-port", no_argument, NULL, OPT_EXIT_PORT },
	{ "debugcon", no_argument, NULL, OPT_DEBUGCON },
	{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "no-kernel-cache", no_argument, NULL, OPT_NO_KERNEL_CACHE },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
	{ "no-api", no_argument, NULL, OPT_NO_API },
	{ "metrics-path", required_argument, NULL, OPT_METRICS_PATH },
	{ "id", required_argument, NULL, OPT_ID },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "net-override", required_argument, NULL, OPT_NET_OVERRIDE },
	{ "disk-override", required_argument, NULL, OPT_DISK_OVERRIDE },
	{ "pci", no_argument, NULL, OPT_PCI },
	{ "transport", required_argument, NULL, OPT_TRANSPORT },
	{ "vfio", required_argument, NULL, OPT_VFIO },
	{ "read-memory", no_argument, NULL, OPT_READ_MEMORY },
	{ "snapshot-on-signal", required_argument, NULL, OPT_SNAPSHOT_ON_SIGNAL },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int fail(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return (mac[0] & 1) ? -EINVAL : 0; /* multicast MACs are not unicast */
}

/* on/off and the other spellings QEMU takes for a switch; -1 if none. */
static int parse_switch(const char *v)
{
	static const char *const on[] = { "on", "yes", "true" };
	static const char *const off[] = { "off", "no", "false" };

	for (size_t i = 0; i < ARRAY_SIZE(on); i++) {
		if (!strcmp(v, on[i]))
			return 1;
		if (!strcmp(v, off[i]))
			return 0;
	}
	return -1;
}

/*
 * Cut the next item off a comma-separated list, in place: a single comma
 * ends it, a doubled one (",,") is a literal comma, as in QEMU. Returns the
 * item (NUL-terminated, unescaped) and moves *pos past it; NULL at the end.
 */
static char *next_item(char **pos)
{
	char *item = *pos, *r = *pos, *w = *pos;

	if (!item)
		return NULL;
	for (; *r; r++) {
		if (*r == ',' && r[1] == ',')
			r++;
		else if (*r == ',')
			break;
		*w++ = *r;
	}
	*pos = *r ? r + 1 : NULL;
	*w = '\0';
	return item;
}

#define DISK_SYNTAX "want path=FILE[,ro=on|off][,num_queues=N][,cache=none|host]" \
	"[,aio=io_uring|sync]; a comma in FILE is written ',,'"

/* num_queues=N, cache=none|host, aio=io_uring|sync of --disk. */
static int disk_io_item(const char *key, const char *v, struct disk_option *d,
			const char *arg, char *err, size_t len)
{
	char *end;
	unsigned long n;

	if (!strcmp(key, "num_queues")) {
		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || end == v || *end || !n || n > VIRTIO_BLK_MAX_QUEUES)
			return fail(err, len, "--disk %s: num_queues=%s: want 1 to %d", arg, v,
				    VIRTIO_BLK_MAX_QUEUES);
		d->num_queues = (unsigned)n;
	} else if (!strcmp(key, "cache")) {
		if (strcmp(v, "none") && strcmp(v, "host"))
			return fail(err, len, "--disk %s: cache=%s: want none or host", arg, v);
		d->cache = strcmp(v, "none") ? VIRTIO_BLK_CACHE_HOST : VIRTIO_BLK_CACHE_NONE;
	} else {
		if (strcmp(v, "io_uring") && strcmp(v, "sync"))
			return fail(err, len, "--disk %s: aio=%s: want io_uring or sync", arg, v);
		d->aio = strcmp(v, "sync") ? VIRTIO_BLK_AIO_IO_URING : VIRTIO_BLK_AIO_SYNC;
	}
	return 0;
}

/* One item of --disk: path=, ro=/readonly=, or a bare ro (older form). */
static int disk_item(char *item, int first, struct disk_option *d,
		     const char *arg, char *err, size_t len)
{
	char *eq = strchr(item, '=');
	int on;

	if (!eq && first) {
		d->path = item; /* the older PATH[,ro] form */
		return 0;
	}
	if (!strcmp(item, "ro")) {
		d->readonly = 1;
		return 0;
	}
	if (!eq)
		return fail(err, len, "--disk %s: unknown item '%s' (%s)", arg, item, DISK_SYNTAX);
	*eq = '\0';
	if (!strcmp(item, "path")) {
		if (d->path)
			return fail(err, len, "--disk %s: the path is given twice", arg);
		d->path = eq + 1;
		return 0;
	}
	if (!strcmp(item, "num_queues") || !strcmp(item, "cache") || !strcmp(item, "aio"))
		return disk_io_item(item, eq + 1, d, arg, err, len);
	if (strcmp(item, "ro") && strcmp(item, "readonly"))
		return fail(err, len, "--disk %s: unknown key '%s' (%s)", arg, item, DISK_SYNTAX);
	on = parse_switch(eq + 1);
	if (on < 0)
		return fail(err, len, "--disk %s: %s=%s: want on or off", arg, item, eq + 1);
	d->readonly = on;
	return 0;
}

/*
 * --disk path=FILE[,ro=on|off], or the older PATH[,ro]. The items are
 * split in place in arg; `shown` is a copy of it for the messages.
 */
static int parse_disk(char *arg, struct vmm_config *cfg, char *err, size_t len)
{
	struct disk_option d = { 0 };
	char shown[128], *pos = arg, *item;
	int first = 1;

	if (cfg->nr_disks >= CLI_MAX_DISKS)
		return fail(err, len, "--disk: at most %d disks", CLI_MAX_DISKS);
	snprintf(shown, sizeof(shown), "%s", arg);
	while ((item = next_item(&pos))) {
		int r = disk_item(item, first, &d, shown, err, len);

		if (r)
			return r;
		first = 0;
	}
	if (!d.path || !*d.path)
		return fail(err, len, "--disk %s: no path (%s)", shown, DISK_SYNTAX);
	cfg->disks[cfg->nr_disks++] = d;
	return 0;
}

/* Two NICs on one TAP, or with one MAC, would fight over frames. */
static int check_net_unique(const struct vmm_config *cfg, const struct net_option *n,
			    char *err, size_t len)
{
	for (int i = 0; i < cfg->nr_nets; i++) {
		const struct net_option *o = &cfg->nets[i];

		if (!strcmp(o->tap, n->tap))
			return fail(err, len, "--net: TAP %s is given twice", n->tap);
		if (o->have_mac && n->have_mac && !memcmp(o->mac, n->mac, 6))
			return fail(err, len, "--net: MAC %02x:%02x:%02x:%02x:%02x:%02x is given twice",
				    n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	}
	return 0;
}

/* queues=N of --net: 1 to VIRTIO_NET_MAX_QUEUE_PAIRS. */
static int parse_queues(const char *v, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || n < 1 || n > VIRTIO_NET_MAX_QUEUE_PAIRS)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static int parse_net(char *arg, struct vmm_config *cfg, char *err, size_t len)
{
	struct net_option n = { 0 };

	if (cfg->nr_nets >= CLI_MAX_NETS)
		return fail(err, len, "--net: at most %d network devices", CLI_MAX_NETS);
	for (char *save = NULL, *tok = strtok_r(arg, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "tap=", 4) && tok[4])
			n.tap = tok + 4;
		else if (!strncmp(tok, "mac=", 4) && parse_mac(tok + 4, n.mac) == 0)
			n.have_mac = 1;
		else if (!strcmp(tok, "vhost=on") || !strcmp(tok, "vhost=off"))
			n.vhost = !strcmp(tok, "vhost=on");
		else if (!strncmp(tok, "queues=", 7) && parse_queues(tok + 7, &n.queues) == 0)
			;
		else
			return fail(err, len, "--net: bad item '%s' (want tap=IF[,mac=XX:XX:XX:XX:XX:XX][,vhost=on|off][,queues=1-%d])",
				    tok, VIRTIO_NET_MAX_QUEUE_PAIRS);
	}
	if (!n.tap)
		return fail(err, len, "--net: tap=IF is required");
	if (check_net_unique(cfg, &n, err, len))
		return -EINVAL;
	cfg->nets[cfg->nr_nets++] = n;
	return 0;
}

#define VSOCK_SYNTAX "want cid=N,uds=PATH, N from 3 to 4294967295"

/* --vsock cid=N,uds=PATH: one device. */
static int parse_vsock(char *arg, struct vmm_config *cfg, char *err, size_t len)
{
	struct vsock_option o = { 0 };

	if (cfg->vsock.uds)
		return fail(err, len, "--vsock: only one vsock device");
	for (char *save = NULL, *tok = strtok_r(arg, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "uds=", 4) && tok[4])
			o.uds = tok + 4;
		else if (strncmp(tok, "cid=", 4) || tok[4] == '-' || parse_u64(tok + 4, &o.cid) ||
			 o.cid < 3 || o.cid > UINT32_MAX)
			return fail(err, len, "--vsock: bad item '%s' (%s)", tok, VSOCK_SYNTAX);
	}
	if (!o.cid || !o.uds)
		return fail(err, len, "--vsock: cid= and uds= are both required (%s)", VSOCK_SYNTAX);
	cfg->vsock = o;
	return 0;
}

/* KEY=TAP or KEY=PATH; the restore checks that KEY names what was saved. */
static int parse_override(const char *opt, char *arg, size_t max_to, struct snap_override *list,
			  int *nr, int max, char *err, size_t len)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg || !eq[1] || strlen(eq + 1) >= max_to)
		return fail(err, len, "--%s: want KEY=%s (at most %zu characters), not '%s'", opt,
			    max_to == IFNAMSIZ ? "TAP" : "PATH", max_to - 1, arg);
	if (*nr == max)
		return fail(err, len, "--%s: at most %d", opt, max);
	*eq = '\0';
	list[(*nr)++] = (struct snap_override){ arg, eq + 1 };
	return 0;
}

static int parse_one(int opt, char *arg, struct vmm_config *cfg, char *err, size_t len)
{
	uint64_t v;

	switch (opt) {
	case OPT_KERNEL: cfg->kernel = arg; return 0;
	case OPT_INITRD: cfg->initrd = arg; return 0;
	case OPT_CMDLINE: cfg->cmdline = arg; return 0;
	case OPT_BINARY: cfg->binary = arg; return 0;
	case OPT_AS_IS: cfg->bzimage_as_is = 1; return 0;
	case OPT_NO_PVH: cfg->no_pvh = 1; return 0;
	case OPT_EXIT_PORT: cfg->exit_port = 1; return 0;
	case OPT_DEBUGCON: cfg->debugcon = 1; return 0;
	case OPT_NO_SECCOMP: cfg->no_seccomp = 1; return 0;
	case OPT_STATS: cfg->stats = 1; return 0;
	case OPT_NO_KERNEL_CACHE: cfg->no_kernel_cache = 1; return 0;
	case OPT_PCI: cfg->pci = 1; return 0;
	case OPT_VFIO:
		if (cfg->nr_vfio == CLI_MAX_VFIO)
			return fail(err, len, "--vfio: at most %d devices", CLI_MAX_VFIO);
		cfg->vfio[cfg->nr_vfio++] = arg;
		return 0;
	case OPT_API_SOCK: cfg->api_sock = arg; return 0;
	case OPT_CONFIG_FILE: cfg->config_file = arg; return 0;
	case OPT_NO_API: cfg->no_api = 1; return 0;
	case OPT_METRICS_PATH: cfg->metrics_path = arg; return 0;
	case OPT_RESTORE: cfg->restore_dir = arg; return 0;
	case OPT_SNAPSHOT_ON_SIGNAL: cfg->snapshot_dir = arg; return 0;
	case OPT_NET_OVERRIDE:
		return parse_override("net-override", arg, IFNAMSIZ, cfg->net_overrides,
				      &cfg->nr_net_overrides, CLI_MAX_NETS, err, len);
	case OPT_DISK_OVERRIDE:
		return parse_override("disk-override", arg, PATH_MAX, cfg->disk_overrides,
				      &cfg->nr_disk_overrides, CLI_MAX_DISKS, err, len);
	case OPT_READ_MEMORY: cfg->restore_read_memory = 1; return 0;
	case OPT_ID:
		if (!*arg || strlen(arg) > 64 || strspn(arg, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != strlen(arg))
			return fail(err, len, "--id %s: want 1 to 64 letters, digits or '-'", arg);
		cfg->id = arg;
		return 0;
	case 'h': cfg->help = 1; return 0;
	case 'V': cfg->version = 1; return 0;
	case OPT_MEM:
		if (parse_size(arg, &v) || v < CLI_MIN_MEM || v > CLI_MAX_MEM || (v & 0xfff))
			return fail(err, len, "--mem %s: want a page-aligned size from 4M to 1T, e.g. 512M or 1G", arg);
		cfg->mem = v;
		return 0;
	case OPT_CPUS:
		if (parse_u64(arg, &v) || v < 1 || v > VM_MAX_VCPUS)
			return fail(err, len, "--cpus %s: want a number from 1 to %d", arg, VM_MAX_VCPUS);
		cfg->cpus = (int)v;
		return 0;
	case OPT_ENTRY:
		if (parse_u64(arg, &v))
			return fail(err, len, "--entry %s: not an address", arg);
		cfg->entry = v;
		return 0;
	case OPT_LOG:
		if (parse_u64(arg, &v) || v > LOG_DEBUG)
			return fail(err, len, "--log %s: want 0-4", arg);
		cfg->log_level = (int)v;
		return 0;
	case OPT_CONSOLE:
		if (!strcmp(arg, "serial"))
			cfg->console = CONSOLE_SERIAL;
		else if (!strcmp(arg, "virtio"))
			cfg->console = CONSOLE_VIRTIO;
		else
			return fail(err, len, "--console %s: want serial or virtio", arg);
		return 0;
	case OPT_TRANSPORT:
		if (!strcmp(arg, "mmio"))
			cfg->transport = TRANSPORT_MMIO;
		else if (!strcmp(arg, "pci"))
			cfg->transport = TRANSPORT_PCI;
		else
			return fail(err, len, "--transport %s: want mmio or pci", arg);
		return 0;
	case OPT_DISK: return parse_disk(arg, cfg, err, len);
	case OPT_NET: return parse_net(arg, cfg, err, len);
	case OPT_VSOCK: return parse_vsock(arg, cfg, err, len);
	default: return fail(err, len, "internal: option %d", opt);
	}
}

/* Cross-option rules, after every option was read. */
static int validate(const struct vmm_config *cfg, char *err, size_t len)
{
	if (cfg->help || cfg->version)
		return 0;
	if (cfg->api_sock && cfg->no_api)
		return fail(err, len, "--api-sock and --no-api exclude each other");
	if (cfg->no_api && !cfg->config_file)
		return fail(err, len, "--no-api needs --config-file (else nothing says what to run)");
	if ((cfg->api_sock || cfg->config_file) &&
	    (cfg->kernel || cfg->binary || cfg->initrd || cfg->cmdline || cfg->nr_disks || cfg->nr_nets ||
	     cfg->vsock.uds))
		return fail(err, len, "--%s gives the guest: --kernel, --binary, --initrd, --cmdline, --disk, --net and --vsock go in %s",
			    cfg->config_file ? "config-file" : "api-sock",
			    cfg->config_file ? "the file" : "API requests");
	if (cfg->restore_dir && (cfg->api_sock || cfg->config_file || cfg->kernel || cfg->binary ||
				 cfg->initrd || cfg->cmdline || cfg->nr_disks || cfg->nr_nets ||
				 cfg->vsock.uds))
		return fail(err, len, "--restore gives the guest: it excludes --kernel, --binary, --initrd, --cmdline, --disk, --net, --vsock, --api-sock and --config-file");
	if (cfg->nr_net_overrides && !cfg->restore_dir)
		return fail(err, len, "--net-override needs --restore");
	if (cfg->nr_disk_overrides && !cfg->restore_dir)
		return fail(err, len, "--disk-override needs --restore");
	if (cfg->restore_read_memory && !cfg->restore_dir)
		return fail(err, len, "--read-memory needs --restore");
	if (cfg->nr_vfio && (cfg->api_sock || cfg->config_file || cfg->restore_dir || cfg->binary))
		return fail(err, len, "--vfio needs --kernel (a Linux guest on the command line)");
	if (cfg->api_sock || cfg->config_file || cfg->restore_dir)
		return 0;
	if (!cfg->kernel && !cfg->binary)
		return fail(err, len, "nothing to run: give --kernel FILE or --binary FILE (see --help)");
	if (cfg->kernel && cfg->binary)
		return fail(err, len, "--kernel and --binary exclude each other");
	if (cfg->binary && (cfg->initrd || cfg->cmdline))
		return fail(err, len, "--initrd and --cmdline need --kernel, not --binary");
	if (cfg->binary)
		return machine_check_raw_entry(cfg->mem, cfg->entry, err, len) ? -EINVAL : 0;
	return 0;
}

int cli_parse(int argc, char **argv, struct vmm_config *cfg, char *err, size_t len)
{
	int opt, entry_given = 0;

	*cfg = (struct vmm_config){
		.mem = CLI_DEFAULT_MEM, .cpus = 1, .entry = machine_raw_default_entry(),
		.log_level = LOG_DEFAULT_LEVEL,
	};
	optind = 0; /* full re-initialisation, so tests can parse repeatedly */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hV", long_options, NULL)) != -1) {
		int r;

		if (opt == '?')
			return fail(err, len, "unknown option '%s' (see --help)", argv[optind - 1]);
		if (opt == ':')
			return fail(err, len, "option '%s' needs a value", argv[optind - 1]);
		entry_given |= opt == OPT_ENTRY;
		r = parse_one(opt, optarg, cfg, err, len);
		if (r)
			return r;
	}
	if (optind < argc)
		return fail(err, len, "unexpected argument '%s' (see --help)", argv[optind]);
	if (entry_given && !cfg->binary)
		return fail(err, len, "--entry needs --binary");
	return validate(cfg, err, len);
}
