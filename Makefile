# Vibe-VMM build. `make` builds lib/libvibevmm.{a,so} and bin/vibevmm.
# `make SAN=1` builds the same with ASan+UBSan under build/san/.
# `make check` runs every test this machine can run (see tests/README.md).

VERSION := 0.1.0
PREFIX ?= /usr/local

HOST_OS := $(shell uname -s)
# The guest architecture: the folder under arch/ and the suffix of the
# backend's arch file (hv/kvm_$(ARCH).c). The host's by default; one name
# per arch (aarch64 is arm64). Cross builds:
#   make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-
ARCH ?= $(shell uname -m)
override ARCH := $(patsubst aarch64,arm64,$(ARCH))
ifneq ($(CROSS_COMPILE),)
ifeq ($(origin CC),default)
CC := $(CROSS_COMPILE)gcc
endif
ifeq ($(origin AS),default)
AS := $(CROSS_COMPILE)as
endif
ifeq ($(origin LD),default)
LD := $(CROSS_COMPILE)ld
endif
ifeq ($(origin AR),default)
AR := $(CROSS_COMPILE)ar
endif
# the target's .pc files (Debian multiarch), not the build machine's
PKG_CONFIG ?= PKG_CONFIG_LIBDIR=/usr/lib/$(CROSS_COMPILE:%-=%)/pkgconfig:/usr/share/pkgconfig pkg-config
# libfdt-dev:arm64 does not install beside the amd64 one: the amd64
# headers and libfdt1:arm64's shared library (scripts/deps.sh cross-arm64)
FDT_LIBS ?= -l:libfdt.so.1
endif
FDT_LIBS ?= -lfdt
PKG_CONFIG ?= pkg-config
OBJCOPY ?= $(CROSS_COMPILE)objcopy

# A cross build keeps its objects apart from the host's.
ifneq ($(CROSS_COMPILE),)
OUT ?= build/$(ARCH)
endif
ifeq ($(SAN),1)
OUT ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
OUT ?= .
SANFLAGS :=
endif
OBJ := $(OUT)/build/obj
LIBDIR := $(OUT)/lib
BINDIR := $(OUT)/bin
TESTBIN := $(OUT)/build/tests

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -fPIC -pthread \
              -Iinclude -I. -D_GNU_SOURCE -DVIBEVMM_VERSION=\"$(VERSION)\"
LDLIBS := -pthread $(shell $(PKG_CONFIG) --libs liblz4 libzstd liblzma zlib 2>/dev/null || echo -llz4 -lzstd -llzma -lz)

# Backend, arch and OS files are chosen here, not by #ifdef.
# The arch's KVM files beyond hv/kvm_$(ARCH).c (snapshot state).
KVM_ARCH_SRCS_x86_64 := hv/kvm_x86_64_state.c
KVM_ARCH_SRCS_arm64 := hv/kvm_arm64_state.c
ifeq ($(HOST_OS),Linux)
HV_SRCS := hv/hv.c hv/kvm.c hv/kvm_msi.c hv/kvm_$(ARCH).c $(KVM_ARCH_SRCS_$(ARCH))
# The seccomp sandbox: the arch's own ioctls apart (their request numbers
# exist only in that arch's headers); sanitizer builds add their
# runtimes' system calls.
OS_SRCS := os/linux/seccomp.c os/linux/thread.c os/linux/seccomp_arch_$(ARCH).c \
           os/linux/seccomp_extra_$(if $(filter 1,$(SAN)),san,none).c
LDLIBS += $(shell $(PKG_CONFIG) --libs libseccomp 2>/dev/null || echo -lseccomp)
# virtio-blk's requests in flight (devices/virtio/blk_uring.c).
LDLIBS += $(shell $(PKG_CONFIG) --libs liburing 2>/dev/null || echo -luring)
# Nettle: SHA-256 of bzImage payloads (the kernel cache's key) with the
# CPU's SHA extensions, ~10x a plain C loop on every boot
LDLIBS += $(shell $(PKG_CONFIG) --libs nettle 2>/dev/null || echo -lnettle)
# VFIO device assignment (Linux's VFIO interface).
VFIO_SRCS := $(wildcard devices/vfio/*.c)
else ifeq ($(HOST_OS),Darwin)
HV_SRCS := hv/hv.c hv/hvf_$(ARCH).c
OS_SRCS := os/none/os.c
endif
# arch/machine_common.c: what every arch's machine.c shares.
ARCH_SRCS := arch/machine_common.c $(wildcard arch/$(ARCH)/*.c)
# arm64 describes the machine with a device tree (libfdt).
ifeq ($(ARCH),arm64)
LDLIBS += $(FDT_LIBS)
endif

LIB_SRCS := $(wildcard core/*.c) $(wildcard boot/*.c) $(wildcard devices/*.c) \
            $(wildcard devices/virtio/*.c) $(wildcard devices/pci/*.c) $(VFIO_SRCS) \
            $(ARCH_SRCS) $(HV_SRCS) $(OS_SRCS)
LIB_OBJS := $(LIB_SRCS:%.c=$(OBJ)/%.o)
CLI_SRCS := $(wildcard cli/*.c) $(wildcard cli/api/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(OBJ)/%.o)
# The CLI's JSON (the API socket, --config-file): jansson, packaged, small
# and strict (scripts/deps.sh says why); the library does not link it.
JSON_LIBS := $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null || echo -ljansson)

LIB_A := $(LIBDIR)/libvibevmm.a
LIB_SO := $(LIBDIR)/libvibevmm.so
CLI := $(BINDIR)/vibevmm

.PHONY: all lib cli clean install check unit guests tests check-fast fuzz bench run soak build-deps-hint
all: $(LIB_A) $(LIB_SO) $(CLI)

Q := $(if $(V),,@)

$(OBJ)/%.o: %.c | build-deps-hint
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# Installs nothing: one line naming the command when build packages are missing.
build-deps-hint:
	@scripts/deps.sh --hint build

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(LIB_SO): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,libvibevmm.so.0 -o $@ $^ $(LDLIBS)

$(CLI): $(CLI_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJS) $(LIB_A) $(LDLIBS) $(JSON_LIBS)

# ---- tests ----
# Unit tests of pure code; test_x86_* only where the library is x86's.
UNIT_SKIP_arm64 := tests/unit/test_x86_%
UNIT_SRCS := $(filter-out $(UNIT_SKIP_$(ARCH)),$(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(TESTBIN)/unit/%)
# The tiny guests and the programs that drive them are the arch's own
# (tests/guests/$(ARCH)/); built under the same names on every arch, so
# tests/run-c-tests.sh and tests/cli find them in $(TESTBIN)/guests.
GUEST_SRC := tests/guests/$(ARCH)
GUEST_TEST_SRCS := $(wildcard $(GUEST_SRC)/test_*.c)
GUEST_TEST_BINS := $(GUEST_TEST_SRCS:$(GUEST_SRC)/%.c=$(TESTBIN)/guests/%)
GUEST_ASM := $(wildcard $(GUEST_SRC)/*.S)
GUEST_IMGS := $(GUEST_ASM:$(GUEST_SRC)/%.S=$(TESTBIN)/guests/%.bin)
GUEST_ASFLAGS_x86_64 := --64

# Unit tests also see the CLI's pure parts (option parsing).
CLI_LIB_OBJS := $(filter-out $(OBJ)/cli/main.o,$(CLI_OBJS))
# Tests parse vm_format_metrics' JSON line with jansson (JSON_LIBS).

$(TESTBIN)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIB_A) $(CLI_LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(CLI_LIB_OBJS) $(LIB_A) -lcmocka $(LDLIBS) $(JSON_LIBS)

# The arm64 platform code is pure C: its unit test builds it from source,
# with libfdt, on any host (the x86 library does not contain it).
ARM64_PURE_SRCS := arch/arm64/fdt.c arch/arm64/platform.c
$(TESTBIN)/unit/test_arm64_fdt: tests/unit/test_arm64_fdt.c $(ARM64_PURE_SRCS) $(wildcard arch/arm64/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(ARM64_PURE_SRCS) -lcmocka $(FDT_LIBS)

$(TESTBIN)/guests/%: $(GUEST_SRC)/%.c $(GUEST_SRC)/harness.h tests/guests/common.h $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIB_A) -lcmocka $(LDLIBS) $(JSON_LIBS)

# Tiny guests: assembled with GNU as at test time, flat binaries.
$(TESTBIN)/guests/%.bin: $(GUEST_SRC)/%.S $(GUEST_SRC)/guest.inc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AS      $<")
	$(Q)$(AS) $(GUEST_ASFLAGS_$(ARCH)) -I$(GUEST_SRC) -o $(@:.bin=.o) $<
	$(Q)$(OBJCOPY) -O binary -j .text $(@:.bin=.o) $@

# ELF guests (tests/guests/x86_64/elf): linked at 1 MiB, notes kept.
GUEST_ELF_SRCS := $(wildcard $(GUEST_SRC)/elf/*.S)
GUEST_ELFS := $(GUEST_ELF_SRCS:$(GUEST_SRC)/elf/%.S=$(TESTBIN)/guests/%.elf)
$(TESTBIN)/guests/%.elf: $(GUEST_SRC)/elf/%.S $(GUEST_SRC)/elf/pvh_note.inc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AS+LD   $<")
	$(Q)$(AS) --64 -I$(GUEST_SRC)/elf -o $(@:.elf=.elf.o) $<
	$(Q)$(LD) -m elf_x86_64 -N --no-warn-rwx-segments -static -nostdlib -Ttext=0x100000 -e _start -o $@ $(@:.elf=.elf.o)

# Soak programs (tests/soak): library users run by tests/e2e/test_soak.py.
SOAK_BINS := $(patsubst tests/soak/%.c,$(TESTBIN)/soak/%,$(wildcard tests/soak/*.c))
$(TESTBIN)/soak/%: tests/soak/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

tests: all $(UNIT_BINS) $(GUEST_TEST_BINS) $(GUEST_IMGS) $(GUEST_ELFS) $(SOAK_BINS)

# The whole suite, after installing what it needs (scripts/deps.sh); tests/run.sh
# prints a summary line and fails on any failure.
check:
	@scripts/deps.sh test
	tests/run.sh

# One configuration (used by tests/run.sh): build and run unit + guest tests.
check-fast: tests
	tests/run-c-tests.sh $(TESTBIN) $(BINDIR)

# Each libFuzzer target for FUZZ_SECONDS (make check runs them for 20 s).
FUZZ_SECONDS ?= 300
fuzz:
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# The long soaks (tests/soak/run.sh): 100 boots in one process, 8 guests
# for 10 minutes; make check runs short versions in its e2e stage.
soak:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory all $(SOAK_BINS)
	tests/soak/run.sh $(SOAK_ARGS)

# Benchmarks side by side with QEMU microvm (see bench/README.md).
bench: all
	bench/run.sh $(BENCH_ARGS)

# Boot a real Linux guest to a shell (fetches/builds what it needs first);
# for this machine's architecture, or ARCH=arm64 (cross-built, in the arm64
# test host on an x86 machine).
run:
	VIBEVMM_RUN_ARCH=$(ARCH) scripts/run-linux.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/vibevmm $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/libvibevmm.so.$(VERSION)
	ln -sf libvibevmm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libvibevmm.so.0
	ln -sf libvibevmm.so.0 $(DESTDIR)$(PREFIX)/lib/libvibevmm.so
	install -m 644 include/*.h $(DESTDIR)$(PREFIX)/include/vibevmm/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(LDLIBS)|' vibevmm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/vibevmm.pc

clean:
	rm -rf build lib bin

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
