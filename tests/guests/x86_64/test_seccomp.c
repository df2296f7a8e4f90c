/* SPDX-License-Identifier: MIT */
/*
 * The seccomp sandbox through the public API, with tiny guests on the local
 * /dev/kvm. A filter is for good and a refused system call kills the whole
 * process, so each case runs in a forked child and the parent judges it by
 * how the child ended: killed by SIGSYS, or exited with CHILD_OK.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/snapfile.h"
#include "devices.h"
#include "harness.h"

#define CHILD_OK 0
#define CHILD_FAILED 3 /* something else went wrong (see its stderr) */

/* Run fn(arg) in a child; its wait status. */
static int in_child(int (*fn)(void *arg), void *arg)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg)); /* _exit: no atexit handlers, no leak check */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void assert_killed_by_sigsys(int status)
{
	if (!WIFSIGNALED(status))
		fail_msg("child was not killed: exit status %d", WEXITSTATUS(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

static void assert_child_ok(int status)
{
	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), CHILD_OK);
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- system calls a compromised device callback might make ---- */

enum attempt {
	TRY_SOCKET, TRY_OPEN, TRY_EXECVE, TRY_EXEC_MAPPING, TRY_OTHER_IOCTL,
	TRY_KILL, NR_ATTEMPTS
};

static const char *const attempt_names[NR_ATTEMPTS] = {
	"socket", "open", "execve", "mmap PROT_EXEC", "ioctl TIOCGWINSZ", "kill",
};

/* Makes the system call; returns (if it survives) whether it was served. */
static bool attempt(enum attempt what)
{
	struct winsize ws;
	void *p;
	int fd;

	switch (what) {
	case TRY_SOCKET:
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		return fd >= 0 && close(fd) == 0;
	case TRY_OPEN:
		fd = open("/proc/self/status", O_RDONLY);
		return fd >= 0 && close(fd) == 0;
	case TRY_EXECVE: /* fails with ENOENT when allowed */
		return execve("/nonexistent/vibevmm-test", (char *[]){ NULL }, (char *[]){ NULL }) < 0;
	case TRY_EXEC_MAPPING:
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p != MAP_FAILED && munmap(p, 4096) == 0;
	case TRY_OTHER_IOCTL: /* ENOTTY on a pipe, but the call is made */
		return ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) >= 0 || errno == ENOTTY ||
		       errno == EINVAL;
	case TRY_KILL:
		return kill(getpid(), 0) == 0;
	default:
		return false;
	}
}

struct attempt_dev {
	struct device dev;
	enum attempt what;
	bool done, served;
};

static int attempt_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct attempt_dev *a = dev->private;

	if (!a->done) {
		a->served = attempt(a->what);
		a->done = true;
	}
	return 0;
}

struct child_case {
	enum attempt what;
	bool seccomp;
};

/* The "mmio" guest writes to the test device first, then halts. */
static int child_device_callback(void *arg)
{
	const struct child_case *c = arg;
	struct attempt_dev a = { .what = c->what };
	struct vm *vm = new_vm();

	if (c->seccomp && vm_enable_seccomp(vm) != 0)
		return CHILD_FAILED;
	a.dev = (struct device){ .name = "attempt", .base = TESTDEV_MMIO, .size = 0x1000,
		.private = &a, .write = attempt_write, .space = DEVICE_MMIO };
	if (vm_register_device(vm, &a.dev))
		return CHILD_FAILED;
	load_guest(vm, "mmio");
	new_vcpu_long_mode(vm, 0);
	if (vm_start(vm) || vm_wait(vm) != VCPU_EXIT_HLT || !a.done || !a.served)
		return CHILD_FAILED;
	vm_destroy(vm);
	return CHILD_OK;
}

/* The proof that the filter is real: each of these, made by a
 * device callback on a vCPU thread, kills the process with SIGSYS. */
static void test_forbidden_syscall_in_device_callback_kills(void **state)
{
	for (int w = 0; w < NR_ATTEMPTS; w++) {
		struct child_case c = { (enum attempt)w, true };
		int status = in_child(child_device_callback, &c);

		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
			fail_msg("%s from a device callback: child not killed by SIGSYS (status 0x%x)",
				 attempt_names[w], status);
	}
}

/* The control: the same callbacks without the sandbox run and return. */
static void test_same_callbacks_without_seccomp_return(void **state)
{
	for (int w = 0; w < NR_ATTEMPTS; w++) {
		struct child_case c = { (enum attempt)w, false };
		int status = in_child(child_device_callback, &c);

		if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK)
			fail_msg("%s from a device callback without seccomp: status 0x%x",
				 attempt_names[w], status);
	}
}

/* ---- the I/O thread ---- */

struct watch_case {
	struct vm *vm;
	bool served;
};

static int watch_ready(void *opaque)
{
	struct watch_case *w = opaque;

	w->served = attempt(TRY_SOCKET);
	vm_request_exit(w->vm, VCPU_EXIT_STOPPED, 0);
	return VM_WATCH_DROP;
}

/* An I/O watch that opens a socket on the I/O thread. */
static int child_io_watch(void *arg)
{
	bool seccomp = *(bool *)arg;
	struct watch_case w = { 0 };
	int p[2];

	if (pipe(p))
		return CHILD_FAILED;
	w.vm = new_vm();
	if (seccomp && vm_enable_seccomp(w.vm) != 0)
		return CHILD_FAILED;
	if (vm_watch_fd(w.vm, p[0], watch_ready, &w) || write(p[1], "x", 1) != 1)
		return CHILD_FAILED;
	load_guest(w.vm, "spin");
	new_vcpu_long_mode(w.vm, 0);
	if (vm_start(w.vm) || vm_wait(w.vm) != VCPU_EXIT_STOPPED || !w.served)
		return CHILD_FAILED;
	vm_destroy(w.vm);
	return CHILD_OK;
}

static void test_forbidden_syscall_on_io_thread_kills(void **state)
{
	bool seccomp = true;

	assert_killed_by_sigsys(in_child(child_io_watch, &seccomp));
	seccomp = false;
	assert_child_ok(in_child(child_io_watch, &seccomp));
}

/* ---- what the threads are allowed keeps working ---- */

/* debugcon + UART output, UART input watched by the I/O thread, the exit
 * port; the calling thread confined too, vm_destroy included. */
static int child_allowed_path(void *arg)
{
	struct vm *vm = new_vm();
	int out[2], in[2];
	char text[128] = "";
	struct device *serial;
	ssize_t n;

	if (pipe2(out, O_NONBLOCK) || pipe(in) || vm_enable_seccomp(vm))
		return CHILD_FAILED;
	serial = serial8250_create(vm, 0x3f8, 4, in[0], out[1]);
	if (vm_register_device(vm, debugcon_create(vm, 0x90000000, out[1])) ||
	    vm_register_device(vm, serial) || serial8250_attach_input(serial, NULL, NULL) ||
	    vm_register_device(vm, exit_port_create(0xf4)))
		return CHILD_FAILED;
	load_guest(vm, "hello");
	new_vcpu_long_mode(vm, 0);
	if (vm_start(vm) || vm_seccomp_confine_caller(vm))
		return CHILD_FAILED;
	if (write(in[1], "typed", 5) != 5) /* the I/O thread reads it */
		return CHILD_FAILED;
	if (vm_wait(vm) != VCPU_EXIT_GUEST_EXIT || vm_exit_status(vm) != 42)
		return CHILD_FAILED;
	n = read(out[0], text, sizeof(text) - 1);
	if (n <= 0 || strcmp(text, "hello from debugcon\nhello from serial\n") != 0)
		return CHILD_FAILED;
	vm_destroy(vm);
	return CHILD_OK;
}

static void test_allowed_path_keeps_working(void **state)
{
	assert_child_ok(in_child(child_allowed_path, NULL));
}

/* /proc/self/task/<tid>/status of the thread named `name`: its Seccomp mode
 * (0 off, 2 filtered), -1 when there is no such thread. */
static int seccomp_mode_of(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int mode = -1;

	while (d && (e = readdir(d)) && mode < 0) {
		char path[300], buf[4096], comm[32] = "";
		const char *line;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, name))
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
		line = strstr(buf, "\nSeccomp:");
		if (line)
			mode = atoi(line + strlen("\nSeccomp:"));
	}
	if (d)
		closedir(d);
	return mode;
}

static int never_ready(void *opaque)
{
	return VM_WATCH_KEEP;
}

/* Two spinning vCPUs and an I/O thread: named, and all filtered, while the
 * calling thread is not (until it asks); then a confined vm_stop (kicks). */
static int child_threads_named_and_filtered(void *arg)
{
	struct vm *vm = new_vm();
	int p[2];

	if (pipe(p) || vm_enable_seccomp(vm) || vm_watch_fd(vm, p[0], never_ready, NULL))
		return CHILD_FAILED;
	load_guest(vm, "spin");
	new_vcpu_long_mode(vm, 0);
	new_vcpu_long_mode(vm, 1);
	if (vm_start(vm))
		return CHILD_FAILED;
	pause_ms(100);
	if (seccomp_mode_of("vcpu0") != 2 || seccomp_mode_of("vcpu1") != 2 ||
	    seccomp_mode_of("vmm-io") != 2) {
		fprintf(stderr, "modes: vcpu0 %d vcpu1 %d vmm-io %d\n", seccomp_mode_of("vcpu0"),
			seccomp_mode_of("vcpu1"), seccomp_mode_of("vmm-io"));
		return CHILD_FAILED;
	}
	if (vm_seccomp_confine_caller(vm) || vm_stop(vm) || vm_wait(vm) != VCPU_EXIT_STOPPED)
		return CHILD_FAILED;
	vm_destroy(vm);
	return CHILD_OK;
}

/* vm_pause/vm_resume from a confined caller: the parking, the I/O
 * thread's hold and the guest clock's ioctls are all on its list. */
static int child_pause_confined(void *arg)
{
	struct vm *vm = new_vm();

	if (vm_enable_seccomp(vm))
		return CHILD_FAILED;
	load_guest(vm, "spin");
	new_vcpu_long_mode(vm, 0);
	new_vcpu_long_mode(vm, 1);
	if (vm_start(vm))
		return CHILD_FAILED;
	pause_ms(50);
	if (vm_seccomp_confine_caller(vm))
		return CHILD_FAILED;
	for (int i = 0; i < 3; i++)
		if (vm_pause(vm) || vm_resume(vm))
			return CHILD_FAILED;
	if (vm_pause(vm) || vm_stop(vm) || vm_wait(vm) != VCPU_EXIT_STOPPED)
		return CHILD_FAILED;
	vm_destroy(vm);
	return CHILD_OK;
}

static void test_pause_resume_confined(void **state)
{
	assert_child_ok(in_child(child_pause_confined, NULL));
}

static void test_threads_named_and_filtered(void **state)
{
	assert_child_ok(in_child(child_threads_named_and_filtered, NULL));
}

/* Without vm_enable_seccomp the threads carry the same names, unfiltered. */
static void test_threads_named_without_seccomp(void **state)
{
	struct vm *vm = new_vm();
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(vm_watch_fd(vm, p[0], never_ready, NULL), 0);
	load_guest(vm, "spin");
	new_vcpu_long_mode(vm, 0);
	assert_int_equal(vm_start(vm), 0);
	pause_ms(100);
	assert_int_equal(seccomp_mode_of("vcpu0"), 0);
	assert_int_equal(seccomp_mode_of("vmm-io"), 0);
	assert_int_equal(vm_stop(vm), 0);
	vm_destroy(vm);
	close(p[0]);
	close(p[1]);
}

/* ---- the main thread: a disk's new image ---- */

/* A temporary image of 64 KiB at path (a char[64]). */
static bool make_disk(char *path)
{
	char zero[65536] = { 0 };
	int fd;

	strcpy(path, "/tmp/vibevmm-seccomp-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, zero, sizeof(zero)) != (ssize_t)sizeof(zero))
		return false;
	return close(fd) == 0;
}

/* A running VM with a disk, the caller confined to the main list: the
 * disk takes another image (opened, checked, locked on this thread), then
 * the same one again;
 * `then_create`: the thread then tries to create a file, which kills. */
static int child_replace_image(void *arg)
{
	bool then_create = *(bool *)arg;
	struct vm *vm = new_vm();
	char a[64], b[64], why[256] = "";
	struct device *disk;
	bool created;
	int fd, r;

	if (!make_disk(a) || !make_disk(b) || vm_enable_seccomp(vm))
		return CHILD_FAILED;
	disk = virtio_blk_create(vm, TESTDEV_MMIO + 0x10000, 10, a, 0, why, sizeof(why));
	if (!disk || vm_register_device(vm, disk))
		return CHILD_FAILED;
	load_guest(vm, "spin");
	new_vcpu_long_mode(vm, 0);
	if (vm_start(vm) || vm_seccomp_confine_caller(vm))
		return CHILD_FAILED;
	r = virtio_blk_replace_image(disk, b, why, sizeof(why));
	if (!r) /* the same image again (a resize): its files duplicated */
		r = virtio_blk_replace_image(disk, b, why, sizeof(why));
	unlink(a);
	unlink(b);
	if (r) {
		fprintf(stderr, "virtio_blk_replace_image: %s\n", why);
		return CHILD_FAILED;
	}
	if (then_create) {
		fd = open("/tmp/vibevmm-seccomp-new", O_RDWR | O_CREAT, 0600);
		created = fd >= 0;
		unlink("/tmp/vibevmm-seccomp-new");
		return created ? CHILD_OK : CHILD_FAILED; /* either way: not killed */
	}
	if (vm_stop(vm) || vm_wait(vm) != VCPU_EXIT_STOPPED)
		return CHILD_FAILED;
	vm_destroy(vm);
	return CHILD_OK;
}

static void test_main_thread_opens_a_new_image_but_creates_nothing(void **state)
{
	bool create = false;
	int status;

	assert_child_ok(in_child(child_replace_image, &create));
	create = true;
	status = in_child(child_replace_image, &create);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
		fail_msg("O_CREAT on the confined main thread: not killed by SIGSYS (status 0x%x)",
			 status);
	unlink("/tmp/vibevmm-seccomp-new");
}

/* ---- the main thread: snapshot state ---- */

/* A port whose read lasts until a pause is asked for: the vCPU then parks
 * right after a port-read exit, which the save has to finish. */
struct slow_port {
	struct device dev;
	atomic_bool entered;
};

static int slow_port_read(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct slow_port *p = dev->private;

	atomic_store(&p->entered, true);
	/* bounded: a few seconds at most, no system call */
	for (unsigned long i = 0; i < (1ul << 32); i++)
		if (atomic_load(&dev->vm->state->pause_requested))
			break;
	memset(data, 0, size);
	return 0;
}

static void slow_port_destroy(struct device *dev)
{
	free(dev->private);
}

static struct slow_port *slow_port_add(struct vm *vm)
{
	struct slow_port *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->dev = (struct device){
		.name = "slow-port", .base = TESTDEV_PORT, .size = 4, .private = p,
		.read = slow_port_read, .destroy = slow_port_destroy, .space = DEVICE_PIO,
	};
	return vm_register_device(vm, &p->dev) ? NULL : p;
}

static int load_buf(struct vm *vm, struct vcpu *vcpu, const struct snap_buf *b)
{
	struct snap_cursor c = { .p = b->data, .left = b->len };

	return vcpu ? vcpu_state_load(vcpu, &c) : vm_state_load(vm, &c);
}

/* vcpu_state_save/load and vm_state_save/load from the confined main
 * thread of a paused VM with the irqchip (every item), the vCPU parked
 * after a port read (finished by a KVM_RUN there); loaded back into the
 * same VM, which then resumes. */
static int child_snapshot_confined(void *arg)
{
	struct vm *vm = new_vm();
	struct snap_buf vm_state = { 0 }, vcpu_state = { 0 };
	struct slow_port *port;

	if (vm_enable_seccomp(vm) || vm_create_irqchip(vm) || !(port = slow_port_add(vm)))
		return CHILD_FAILED;
	load_guest(vm, "snapcount");
	new_vcpu_long_mode(vm, 0);
	if (vm_start(vm) || vm_seccomp_confine_caller(vm))
		return CHILD_FAILED;
	while (!atomic_load(&port->entered))
		poll(NULL, 0, 1);
	if (vm_pause(vm))
		return CHILD_FAILED;
	if (vm->vcpus[0]->exit.reason != VCPU_EXIT_IO) {
		fprintf(stderr, "parked after exit %d, not the port read\n", vm->vcpus[0]->exit.reason);
		return CHILD_FAILED;
	}
	if (vm_state_save(vm, &vm_state) || vcpu_state_save(vm->vcpus[0], &vcpu_state) ||
	    load_buf(vm, NULL, &vm_state) || load_buf(vm, vm->vcpus[0], &vcpu_state))
		return CHILD_FAILED;
	if (vm_resume(vm) || vm_stop(vm) || vm_wait(vm) != VCPU_EXIT_STOPPED)
		return CHILD_FAILED;
	snap_buf_free(&vm_state);
	snap_buf_free(&vcpu_state);
	vm_destroy(vm);
	return CHILD_OK;
}

static void test_snapshot_state_confined(void **state)
{
	assert_child_ok(in_child(child_snapshot_confined, NULL));
}

/* ---- API rules ---- */

static void test_enable_and_confine_rules(void **state)
{
	struct vm *vm = new_vm();

	/* Not enabled, or not started: the caller stays free. */
	assert_int_equal(vm_seccomp_confine_caller(vm), -EINVAL);
	assert_int_equal(vm_enable_seccomp(vm), 0);
	assert_int_equal(vm_enable_seccomp(vm), 0); /* again: nothing to do */
	assert_int_equal(vm_seccomp_confine_caller(vm), -EINVAL);
	assert_int_equal(vm_enable_seccomp(NULL), -EINVAL);
	vm_destroy(vm);

	/* After a device exists it is too late (a disk's worker would run free). */
	vm = new_vm();
	testdev_add(vm, DEVICE_MMIO, TESTDEV_MMIO, 0x1000);
	assert_int_equal(vm_enable_seccomp(vm), -EBUSY);
	vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forbidden_syscall_in_device_callback_kills),
		cmocka_unit_test(test_same_callbacks_without_seccomp_return),
		cmocka_unit_test(test_forbidden_syscall_on_io_thread_kills),
		cmocka_unit_test(test_allowed_path_keeps_working),
		cmocka_unit_test(test_threads_named_and_filtered),
		cmocka_unit_test(test_pause_resume_confined),
		cmocka_unit_test(test_main_thread_opens_a_new_image_but_creates_nothing),
		cmocka_unit_test(test_snapshot_state_confined),
		cmocka_unit_test(test_threads_named_without_seccomp),
		cmocka_unit_test(test_enable_and_confine_rules),
	};

	return cmocka_run_group_tests_name("seccomp", tests, skip_without_kvm, NULL);
}
