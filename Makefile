# thaw — plain GNU make. Outputs go to $(BUILD) (default build/).
#   make [all]      library (static + shared), the thaw command, tests, examples
#   make test       install missing packages, build, run the test suite
#   make demo       install missing packages, build, run the demo
#   make bench      benchmarks with ratios against baselines from the same run
#   make asan|ubsan|tsan   rerun the suite under a sanitizer (in build/<name>/)
#   make install|uninstall [PREFIX=/usr/local] [DESTDIR=]
#   make fuzz       every tests/fuzz/ target under libFuzzer (clang), FUZZ_SECONDS each
#   make format | clean | deps

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PCDIR ?= $(LIBDIR)/pkgconfig
BUILD ?= build
SAN ?=

MAJOR := 2
VERSION := 2.0.0

CC ?= cc
OPT ?= -O2
CFLAGS ?= $(OPT) -g
THAW_CFLAGS := -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers \
	-fPIC -fvisibility=hidden -D_GNU_SOURCE -Iinclude -I. -Irestore -MMD -MP
ifneq ($(SAN),)
THAW_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer
LDFLAGS_SAN := -fsanitize=$(SAN)
endif
LIBS := -luring -lzstd -lxxhash -lcurl -lmicrohttpd -lprotobuf-c -lpthread

ifeq ($(V),1)
Q :=
else
Q := @
endif

# The library is uffd/ and every layer of restore/ but the command (restore/cli/).
LIB_LAYERS := common format store snapshot lazy write export criu
LIB_SRCS := $(sort $(filter-out uffd/floor.c,$(wildcard uffd/*.c)) \
	$(foreach l,$(LIB_LAYERS),$(wildcard restore/$(l)/*.c)))
CLI_SRCS := $(sort $(wildcard restore/cli/*.c) $(filter-out %.bpf.c,$(wildcard restore/cli/trace/*.c)))
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TESTLIB_SRCS := $(sort $(filter-out tests/test_%.c,$(wildcard tests/*.c)))
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c examples/migrate/*.c examples/criu/*.c))

# CRIU's image descriptions (restore/criu/proto/), compiled by protoc-c into
# $(BUILD)/gen/criu/ and linked into the library.
CRIU_PROTOS := $(sort $(wildcard restore/criu/proto/*.proto))
CRIU_PB_C := $(CRIU_PROTOS:restore/criu/proto/%.proto=$(BUILD)/gen/criu/%.pb-c.c)
CRIU_PB_H := $(CRIU_PB_C:.c=.h)
CRIU_PB_OBJS := $(CRIU_PB_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(CRIU_PB_OBJS)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
TESTLIB_OBJS := $(TESTLIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)

STATIC_LIB := $(BUILD)/libthaw.a
# The bench's bare-uffd floor: linked by the command and the tests, never installed.
FLOOR_LIB := $(BUILD)/libthaw-floor.a
SHARED_LIB := $(BUILD)/libthaw.so.$(VERSION)
THAW_BIN := $(BUILD)/thaw
PC_FILE := $(BUILD)/thaw.pc

.PHONY: all test bench demo install install-man uninstall clean format asan ubsan tsan fuzz fuzz-build deps FORCE
all: $(STATIC_LIB) $(SHARED_LIB) $(THAW_BIN) $(TEST_BINS) $(EXAMPLE_BINS) $(PC_FILE)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(THAW_CFLAGS) $(CFLAGS) -c -o $@ $<

# One protoc-c run writes both files (a grouped pattern rule, safe under -j).
$(BUILD)/gen/criu/%.pb-c.c $(BUILD)/gen/criu/%.pb-c.h: restore/criu/proto/%.proto
	@mkdir -p $(@D)
	@$(if $(Q),echo "  PROTOC  $<")
	$(Q)protoc-c --c_out=$(BUILD)/gen/criu -Irestore/criu/proto $<
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(THAW_CFLAGS) $(CFLAGS) -w -c -o $@ $<
# Generated headers include each other (mm includes vma): all before any use.
$(CRIU_PB_OBJS) $(filter $(BUILD)/obj/restore/criu/%,$(LIB_OBJS)): $(CRIU_PB_H)
$(BUILD)/obj/restore/criu/%.o $(CRIU_PB_OBJS): THAW_CFLAGS += -I$(BUILD)/gen/criu
.SECONDARY: $(CRIU_PB_C) $(CRIU_PB_H)

$(STATIC_LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS) libthaw.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libthaw.so.$(MAJOR) -Wl,--version-script=libthaw.map \
		$(LDFLAGS_SAN) $(LDFLAGS) -o $@ $(LIB_OBJS) $(LIBS)
	$(Q)ln -sf libthaw.so.$(VERSION) $(BUILD)/libthaw.so.$(MAJOR)
	$(Q)ln -sf libthaw.so.$(MAJOR) $(BUILD)/libthaw.so

$(FLOOR_LIB): $(BUILD)/obj/uffd/floor.o
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(THAW_BIN): $(CLI_OBJS) $(FLOOR_LIB) $(STATIC_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $(CLI_OBJS) $(FLOOR_LIB) $(STATIC_LIB) $(LIBS) $(BPF_LIBS) -ljson-c -lm

# `thaw trace`'s BPF program: CO-RE against the running kernel's BTF, built by
# clang and embedded in the command as a bpftool skeleton (the .bpf.c is not
# in the command's wildcard); everything generated lands in $(BUILD)/bpf/.
BPFTOOL ?= $(or $(shell command -v bpftool),/usr/sbin/bpftool)
BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_LIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf)
$(BUILD)/bpf/vmlinux.h:
	@mkdir -p $(@D)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@
$(BUILD)/bpf/%.bpf.o: restore/cli/trace/%.bpf.c restore/cli/trace/%.h $(BUILD)/bpf/vmlinux.h
	@$(if $(Q),echo "  BPF     $<")
	$(Q)clang -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -I$(BUILD)/bpf -c -o $@ $<
$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(BPFTOOL) gen skeleton $< name $* > $@.tmp && mv $@.tmp $@
# Kept, not removed as an intermediate: `bpftool prog dump` and llvm-objdump read it.
.SECONDARY: $(BUILD)/bpf/fault_trace.bpf.o
$(BUILD)/obj/restore/cli/trace/cli_trace.o: $(BUILD)/bpf/fault_trace.skel.h
$(BUILD)/obj/restore/cli/trace/cli_trace.o: THAW_CFLAGS += -I$(BUILD)/bpf

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TESTLIB_OBJS) $(FLOOR_LIB) $(STATIC_LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $< $(TESTLIB_OBJS) $(FLOOR_LIB) $(STATIC_LIB) $(LIBS) -lm

# What CRIU checkpoints in the CRIU tests: built without sanitizers, whose
# terabyte shadow mappings criu dump would walk page by page.
$(BUILD)/examples/criu/workload: examples/criu/workload.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(filter-out -fsanitize=% -MMD -MP,$(THAW_CFLAGS)) -O2 -g -o $@ $<

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(STATIC_LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS) -lm

# Rewritten when PREFIX and friends change, not only when thaw.pc.in does.
$(PC_FILE): thaw.pc.in Makefile FORCE
	@mkdir -p $(@D)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' $< > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
FORCE:

deps:
	$(Q)./scripts/deps.sh

# The fuzz targets are built when clang is there, asked after deps has run (on a
# fresh machine deps installs it, after make has read this file).
test: deps all
	$(Q)if command -v $(FUZZ_CC) >/dev/null; then $(MAKE) --no-print-directory fuzz-build; fi
	$(Q)THAW_BUILD=$(BUILD) ./tests/run.sh

demo: deps all
	$(Q)THAW_BUILD=$(BUILD) ./scripts/demo.sh

bench: deps all
	$(Q)THAW_BUILD=$(BUILD) ./scripts/bench.sh

# Fuzz targets under libFuzzer (clang), one file each in tests/fuzz/, linked with
# the library's sources built for fuzzing (ASan, UBSan); scripts/fuzz.sh seeds
# and runs them. `make fuzz` runs each FUZZ_SECONDS; `make test` builds them
# (when clang is there) and tests/test_fuzz runs each for a few seconds.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CFLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -std=gnu11 \
	-D_GNU_SOURCE -Iinclude -I. -Irestore -MMD -MP
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# The targets read snapshots, traces, HTTP replies and handshakes: no CRIU layer.
FUZZ_OBJS := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(filter-out restore/criu/%,$(LIB_SRCS))) \
	$(BUILD)/fuzz/obj/restore/cli/cli_handshake.o

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LIBS) -ljson-c -lm

.SECONDARY: $(FUZZ_OBJS)
fuzz-build: $(FUZZ_BINS)

fuzz: all fuzz-build
	$(Q)THAW_BUILD=$(BUILD) ./scripts/fuzz.sh $(FUZZ_SECONDS)

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=address,undefined OPT=-O1 test
ubsan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/ubsan SAN=undefined OPT=-O1 test
tsan:
	$(Q)TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp $(TSAN_OPTIONS)" \
		$(MAKE) --no-print-directory BUILD=build/tsan SAN=thread OPT=-O1 test

# Manual pages: man/*.{1,3,5} as they are, and for every other function of a
# family page a one-line .so link to it (alias:page), so `man thaw_restore_wait` works.
MANDIR ?= $(PREFIX)/share/man
MAN_PAGES := $(sort $(wildcard man/*.1 man/*.3 man/*.5))
MAN_LINKS := thaw_version:thaw_strerror \
	thaw_snapshot_close:thaw_snapshot_open thaw_snapshot_get_info:thaw_snapshot_open \
	thaw_snapshot_region_count:thaw_snapshot_open thaw_snapshot_region:thaw_snapshot_open \
	thaw_snapshot_chunk:thaw_snapshot_open thaw_snapshot_read_chunk:thaw_snapshot_open \
	thaw_snapshot_set_cache:thaw_snapshot_open thaw_snapshot_cache_stats:thaw_snapshot_open \
	thaw_restore_attach:thaw_restore_start thaw_restore_region_addr:thaw_restore_start \
	thaw_restore_wait:thaw_restore_start thaw_restore_stats:thaw_restore_start \
	thaw_restore_populate:thaw_restore_start thaw_restore_free:thaw_restore_start \
	thaw_restore_stop:thaw_restore_start \
	thaw_writer_add_region:thaw_writer_open thaw_writer_add_process:thaw_writer_open \
	thaw_writer_close:thaw_writer_open thaw_writer_abort:thaw_writer_open \
	thaw_trace_load:thaw_trace_new thaw_trace_save:thaw_trace_new \
	thaw_trace_set_snapshot:thaw_trace_new thaw_trace_snapshot:thaw_trace_new \
	thaw_trace_add_chunk:thaw_trace_new thaw_trace_add_page:thaw_trace_new \
	thaw_trace_count:thaw_trace_new thaw_trace_free:thaw_trace_new \
	thaw_export_url:thaw_export_start thaw_export_wait:thaw_export_start \
	thaw_export_stats:thaw_export_start thaw_export_stop:thaw_export_start \
	thaw_criu_task_mappings:thaw_criu_import thaw_criu_check:thaw_criu_import \
	thaw_criu_attach:thaw_criu_import
# man/thaw.1 -> man1/thaw.1
man_dest = $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(1)))/$(notdir $(1))
MAN_FILES := $(foreach p,$(MAN_PAGES),$(call man_dest,$(p))) \
	$(foreach l,$(MAN_LINKS),$(DESTDIR)$(MANDIR)/man3/$(word 1,$(subst :, ,$(l))).3)

INSTALL_FILES := $(MAN_FILES) $(DESTDIR)$(LIBDIR)/libthaw.a $(DESTDIR)$(LIBDIR)/libthaw.so.$(VERSION) \
	$(DESTDIR)$(LIBDIR)/libthaw.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libthaw.so \
	$(DESTDIR)$(INCDIR)/thaw.h $(DESTDIR)$(PCDIR)/thaw.pc $(DESTDIR)$(BINDIR)/thaw

install: $(STATIC_LIB) $(SHARED_LIB) $(THAW_BIN) $(PC_FILE) install-man
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR) $(DESTDIR)$(BINDIR)
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libthaw.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libthaw.so.$(MAJOR)
	ln -sf libthaw.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libthaw.so
	install -m 644 include/thaw.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(PC_FILE) $(DESTDIR)$(PCDIR)/
	install -m 755 $(THAW_BIN) $(DESTDIR)$(BINDIR)/

# The pages alone (no build needed): tests/test_man.c installs them into a DESTDIR.
install-man:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5
	$(Q)$(foreach p,$(MAN_PAGES),install -m 644 $(p) $(call man_dest,$(p)) &&) true
	$(Q)$(foreach l,$(MAN_LINKS),printf '.so man3/%s.3\n' $(word 2,$(subst :, ,$(l))) \
		> $(DESTDIR)$(MANDIR)/man3/$(word 1,$(subst :, ,$(l))).3 &&) true

uninstall:
	rm -f $(INSTALL_FILES)

format:
	clang-format -i $(wildcard include/*.h uffd/*.[ch] restore/*/*.[ch] restore/cli/trace/*.[ch] tests/*.[ch] tests/fuzz/*.[ch] examples/*.[ch] examples/migrate/*.[ch] scripts/*.c)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz -name '*.d' 2>/dev/null)
