#!/bin/bash
# package_deb: the Debian package, checked the way an operator would.
#
# Builds the package from this build directory with cpack (gzip instead
# of xz, which only saves time), unpacks it with `dpkg-deb -x` into a
# scratch root and checks: the control fields (Depends computed), the
# file list, the units (systemd-analyze verify, ExecStart in /usr/bin),
# the sysusers and tmpfiles entries (applied to a second scratch root),
# the man pages (rendered by man -l without a warning, every command and
# flag of every --help in them), the bash completion (loads, completes
# `troupe ma` to `map`, offers every flag of every --help), a program
# built against the installed libtroupe with pkg-config, and the unpacked
# programs themselves: --version, --help, and `troupe up` + `troupe map`
# from the scratch root (the worker finds troupe-shim beside itself).
#
# Environment (set by ctest, cmake/packaging.cmake): TROUPE_BUILD_DIR,
# TROUPE_SOURCE_DIR, TROUPE_SANITIZE (comma-separated), CC, CPACK.
# Exits 0 when all pass, 1 on the first failure, 77 when a tool is
# missing.
set -u
B=${TROUPE_BUILD_DIR:?}
S=${TROUPE_SOURCE_DIR:?}
CPACK=${CPACK:-cpack}
CC=${CC:-cc}

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok (${SECONDS}s): $*"; }

for t in dpkg-deb dpkg "$CPACK" systemd-analyze systemd-sysusers \
	systemd-tmpfiles man col pkg-config readelf gzip dpkg-shlibdeps "$CC"; do
	command -v "$t" >/dev/null 2>&1 ||
		{ echo "SKIP: $t is not installed" >&2; exit 77; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/troupe-deb.XXXXXX")
UP_PID=
cleanup() {
	if [ -n "$UP_PID" ]; then
		kill -TERM "$UP_PID" 2>/dev/null
		wait "$UP_PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

version=$(sed -n 's/^project(troupe VERSION \([0-9.]*\).*/\1/p' "$S/CMakeLists.txt")
arch=$(dpkg --print-architecture)
[ -n "$version" ] || fail "no version in CMakeLists.txt"

# --- build the package ---------------------------------------------------
(cd "$B" && "$CPACK" -G DEB -B "$T/out" \
	-D CPACK_DEBIAN_COMPRESSION_TYPE=gzip) >"$T/cpack.log" 2>&1 ||
	{ cat "$T/cpack.log" >&2; fail "cpack -G DEB failed"; }
deb=$T/out/troupe_${version}_${arch}.deb
[ -f "$deb" ] || { ls "$T/out" >&2; fail "no $(basename "$deb")"; }
ok "cpack made $(basename "$deb")"

# --- control fields ---------------------------------------------------------
dpkg-deb -f "$deb" >"$T/control" || fail "dpkg-deb -f"
field() { sed -n "s/^$1: //p" "$T/control"; }
[ "$(field Package)" = troupe ] || fail "Package is not troupe"
[ "$(field Version)" = "$version" ] || fail "Version is not $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture is not $arch"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
[ -n "$(field Description)" ] || fail "no Description"
depends=$(field Depends)
for p in libc6 libnng1 libprotobuf-c1 libuv1 libsqlite3-0 libjson-c5 \
	libsystemd0; do
	echo "$depends" | grep -Eq "(^|, )$p( |,|$)" ||
		fail "Depends lacks $p: $depends"
done
ok "control: Depends: $depends"
dpkg-deb -e "$deb" "$T/control.d" || fail "dpkg-deb -e"
for s in postinst prerm postrm; do
	[ -x "$T/control.d/$s" ] || fail "no executable $s"
	sh -n "$T/control.d/$s" || fail "$s is not valid sh"
done
grep -q systemd-sysusers "$T/control.d/postinst" ||
	fail "postinst does not create the users"
ok "maintainer scripts"

# --- the files --------------------------------------------------------------
R=$T/root
dpkg-deb -x "$deb" "$R" || fail "dpkg-deb -x"
if find "$R" -path '*/python3*' -name '*.py' | grep -q .; then
	echo "$depends" | grep -Eq "(^|, )python3( |,|$)" ||
		fail "the package holds Python modules but Depends lacks python3"
fi
for b in troupe troupe-scheduler troupe-worker troupe-shim; do
	[ -x "$R/usr/bin/$b" ] || fail "no /usr/bin/$b"
done
lib=$(find "$R/usr/lib" -name 'libtroupe.so.0' | head -1)
[ -n "$lib" ] || fail "no libtroupe.so.0"
libdir=$(dirname "$lib")
[ -L "$libdir/libtroupe.so" ] || fail "no libtroupe.so link"
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libtroupe.so.0 ] || fail "SONAME is '$soname'"
for h in troupe.h client.h error.h envelope.h home.h actor.h \
	api.pb-c.h envelope.pb-c.h; do
	[ -f "$R/usr/include/troupe/$h" ] || fail "no include/troupe/$h"
done
pc=$libdir/pkgconfig/troupe.pc
[ -f "$pc" ] || fail "no troupe.pc"
grep -q '^prefix=/usr$' "$pc" || fail "troupe.pc's prefix is not /usr"
U=$R/usr/lib/systemd/system
for u in troupe-scheduler troupe-worker; do
	[ -f "$U/$u.service" ] || fail "no $u.service"
done
[ -f "$R/usr/lib/sysusers.d/troupe.conf" ] || fail "no sysusers.d/troupe.conf"
[ -f "$R/usr/lib/tmpfiles.d/troupe.conf" ] || fail "no tmpfiles.d/troupe.conf"
M=$R/usr/share/man
for m in man1/troupe.1 man8/troupe-scheduler.8 man8/troupe-worker.8; do
	[ -f "$M/$m.gz" ] || fail "no $m.gz"
done
C=$R/usr/share/bash-completion/completions
for c in troupe troupe-scheduler troupe-worker; do
	[ -f "$C/$c" ] || fail "no completions/$c"
done
ok "file list"

# --- units, users -----------------------------------------------------------
# ExecStart names the packaged programs; verify checks that it exists,
# so the copies name them in the scratch root.
mkdir -p "$T/units"
for u in troupe-scheduler troupe-worker; do
	grep -q "^ExecStart=/usr/bin/$u " "$U/$u.service" ||
		fail "$u.service does not start /usr/bin/$u"
	sed "s#^ExecStart=/usr/bin/#ExecStart=$R/usr/bin/#" "$U/$u.service" \
		>"$T/units/$u.service"
done
systemd-analyze verify "$T/units/troupe-scheduler.service" \
	"$T/units/troupe-worker.service" >"$T/verify.log" 2>&1 ||
	{ cat "$T/verify.log" >&2; fail "systemd-analyze verify"; }
[ -s "$T/verify.log" ] && { cat "$T/verify.log" >&2; fail "verify warned"; }
# The worker's items run as an unprivileged user of its own: --run-as,
# the user that sysusers creates, not the scheduler's.
grep -q '^ExecStart=.* --run-as \${TROUPE_RUN_AS}' "$U/troupe-worker.service" ||
	fail "the worker's unit does not pass --run-as"
run_as=$(sed -n 's/^Environment=TROUPE_RUN_AS=//p' "$U/troupe-worker.service")
sched_user=$(sed -n 's/^User=//p' "$U/troupe-scheduler.service")
[ -n "$run_as" ] && [ "$run_as" != root ] && [ "$run_as" != "$sched_user" ] ||
	fail "the worker's items run as '$run_as'"
grep -q '^CapabilityBoundingSet=.*CAP_SETUID' "$U/troupe-worker.service" ||
	fail "the worker's unit cannot drop to the --run-as user"
Y=$T/sysroot
mkdir -p "$Y/etc"
systemd-sysusers --root="$Y" "$R/usr/lib/sysusers.d/troupe.conf" \
	>/dev/null 2>&1 || fail "systemd-sysusers"
for u in "$sched_user" "$run_as"; do
	grep -q "^$u:" "$Y/etc/passwd" || fail "sysusers does not create $u"
done
systemd-tmpfiles --root="$Y" --create "$R/usr/lib/tmpfiles.d/troupe.conf" \
	>/dev/null 2>&1 || fail "systemd-tmpfiles"
home=$(awk -F: -v u="$run_as" '$1 == u { print $6 }' "$Y/etc/passwd")
uid=$(awk -F: -v u="$run_as" '$1 == u { print $3 }' "$Y/etc/passwd")
[ -d "$Y$home" ] && [ "$(stat -c %u "$Y$home")" = "$uid" ] ||
	fail "tmpfiles does not make $run_as's home $home"
ok "units verify; users $sched_user, $run_as (home $home)"

# --- the programs, unpacked ---------------------------------------------------
export LD_LIBRARY_PATH=$libdir
export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0
out=$("$R/usr/bin/troupe" --version) || fail "troupe --version"
[ "$out" = "troupe $version" ] || fail "troupe --version says '$out'"
for b in troupe troupe-scheduler troupe-worker; do
	"$R/usr/bin/$b" --help >"$T/$b.help" 2>&1 || fail "$b --help"
	grep -q "^usage: $b" "$T/$b.help" || fail "$b --help shows no usage"
done
ok "troupe --version, --help of the three programs"

# --- man pages ---------------------------------------------------------------
render() {
	LC_ALL=C.UTF-8 MANWIDTH=100 MAN_KEEP_FORMATTING= man --warnings -l "$1" \
		2>"$T/man.err" | col -b
}
for m in man1/troupe.1 man8/troupe-scheduler.8 man8/troupe-worker.8; do
	page=$(basename "$m")
	render "$M/$m.gz" >"$T/$page.txt" || fail "man -l $m"
	[ -s "$T/man.err" ] && { cat "$T/man.err" >&2; fail "man -l $m warns"; }
	for s in NAME SYNOPSIS DESCRIPTION ENVIRONMENT FILES EXAMPLES; do
		grep -q "^$s" "$T/$page.txt" || fail "$page has no $s section"
	done
done
# The commands of `troupe --help`, and each one's flags.
cmds=$(sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p' "$T/troupe.help")
[ -n "$cmds" ] || fail "no commands in troupe --help"
flags_of() { grep -o -- '--[a-z][a-z-]*' "$1" | sort -u; }
# The same without the flags of other commands quoted in the prose
# (`troupe map --task NAME` in task's help).
own_flags_of() { sed 's/`[^`]*`//g' "$1" | grep -o -- '--[a-z][a-z-]*' | sort -u; }
for c in $cmds; do
	[ "$c" = version ] && { : >"$T/cmd.$c"; continue; }
	"$R/usr/bin/troupe" "$c" --help >"$T/cmd.$c" 2>&1 ||
		fail "troupe $c --help"
done
for c in $cmds; do
	grep -Eq "^ +troupe $c( |$)" "$T/troupe.1.txt" ||
		fail "troupe(1) has no section for 'troupe $c'"
	for f in $(flags_of "$T/cmd.$c"); do
		grep -q -- "$f\b" "$T/troupe.1.txt" ||
			fail "troupe(1) does not describe $f (troupe $c --help)"
	done
done
for f in $(flags_of "$T/troupe.help"); do
	grep -q -- "$f\b" "$T/troupe.1.txt" || fail "troupe(1) lacks $f"
done
for d in troupe-scheduler troupe-worker; do
	for f in $(flags_of "$T/$d.help"); do
		grep -Eq -- "^ *(-[a-z], )?$f\b" "$T/$d.8.txt" ||
			fail "$d(8) has no entry for $f"
	done
done
ok "man pages render cleanly and describe every command and flag"

# --- bash completion -----------------------------------------------------------
# complete WORDS...: what the completion offers for the last word.
complete_words() {
	bash --norc --noprofile -c '
		load() { source "$1"; }   # as bash-completion does: in a function
		load "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		spec=$(complete -p "$1") || exit 1
		fn=${spec#*-F }; fn=${fn%% *}
		"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$C/${1}" "$@"
}
[ "$(complete_words troupe ma)" = map ] ||
	fail "troupe ma<TAB> gives '$(complete_words troupe ma)', not map"
all=$(complete_words troupe '')
for c in $cmds; do
	echo "$all" | grep -qx "$c" || fail "completion lacks command $c"
done
# One bash for all the commands: "COMMAND FLAG" for every flag offered
# after each command and each of its subcommands.
bash --norc --noprofile -c '
	load() { source "$1"; }
	load "$1"; shift
	ask() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _troupe; }
	for c in "$@"; do
		ask troupe "$c" ""
		subs=("${COMPREPLY[@]}")
		ask troupe "$c" --
		printf "$c %s\n" "${COMPREPLY[@]}"
		for s in "${subs[@]}"; do
			[[ $s == -* ]] && continue
			ask troupe "$c" "$s" --
			printf "$c %s\n" "${COMPREPLY[@]}"
		done
	done' _ "$C/troupe" $cmds >"$T/offered" || fail "completion run"
for c in $cmds; do
	for f in $(own_flags_of "$T/cmd.$c"); do
		[ "$f" = --help ] && continue
		grep -qx -- "$c $f" "$T/offered" ||
			fail "completion of 'troupe $c' lacks $f"
	done
done
for d in troupe-scheduler troupe-worker; do
	offered=$(complete_words "$d" --)
	for f in $(flags_of "$T/$d.help"); do
		echo "$offered" | grep -qx -- "$f" ||
			fail "completion of $d lacks $f"
	done
done
[ "$(complete_words troupe map --protocol '')" = $'lines\nframes' ] ||
	fail "completion of --protocol"
ok "bash completion: every command and flag"

# --- the installed programs and library at work --------------------------------
H=$T/home
mkdir -m 0700 "$H"
export TROUPE_HOME=$H
unset TROUPE_ADDR TROUPE_TOKEN TROUPE_TOKEN_FILE TROUPE_PROJECT
"$R/usr/bin/troupe" up --workers 1 --slots 2 >"$T/up.log" 2>&1 &
UP_PID=$!
for _ in $(seq 200); do
	"$R/usr/bin/troupe" health >/dev/null 2>&1 && break
	kill -0 "$UP_PID" 2>/dev/null || { cat "$T/up.log" >&2; fail "troupe up died"; }
	sleep 0.1
done
# A worker registers shortly after the scheduler answers.
for _ in $(seq 200); do
	"$R/usr/bin/troupe" workers 2>/dev/null | grep -q . &&
		[ "$("$R/usr/bin/troupe" workers 2>/dev/null | wc -l)" -ge 2 ] && break
	sleep 0.1
done
out=$(printf '1\n2\n3\n' | "$R/usr/bin/troupe" map --cmd 'expr {} + {}') ||
	{ cat "$T/up.log" >&2; fail "troupe map from the package"; }
[ "$out" = $'2\n4\n6' ] || fail "troupe map printed '$out'"
grep -q 'troupe-shim is not beside' "$T/up.log" &&
	fail "the packaged worker does not find troupe-shim"
ok "troupe up + troupe map from the unpacked package"

cat >"$T/hello.c" <<'PROG'
/* A client of the installed libtroupe: asks the scheduler for its health. */
#include <stdio.h>
#include <troupe/troupe.h>

int
main(void)
{
	Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__GetHealthReply  *rep = NULL;
	troupe_client           *c = NULL;
	int                      rv;

	if ((rv = troupe_client_open(NULL, NULL, &c)) != 0) {
		fprintf(stderr, "open: %s\n", troupe_strerror(rv));
		return 1;
	}
	if (TROUPE_CALL(c, GetHealth, &req, get_health, &rep) != 0) {
		fprintf(stderr, "GetHealth: %s\n", troupe_client_error(c));
		troupe_client_close(c);
		return 1;
	}
	printf("%s\n", rep->version);
	troupe__get_health_reply__free_unpacked(rep, NULL);
	troupe_client_close(c);
	return 0;
}
PROG
san=
[ -n "${TROUPE_SANITIZE:-}" ] && san="-fsanitize=$TROUPE_SANITIZE"
pcflags=$(PKG_CONFIG_SYSROOT_DIR=$R PKG_CONFIG_PATH=$(dirname "$pc") \
	pkg-config --cflags --libs troupe) || fail "pkg-config troupe"
echo "$pcflags" | grep -q -- "-I$R/usr/include" ||
	fail "pkg-config --cflags does not name the headers: $pcflags"
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Werror $san -o "$T/hello" "$T/hello.c" $pcflags \
	2>"$T/cc.log" || { cat "$T/cc.log" >&2; fail "cc against libtroupe"; }
ldd "$T/hello" | grep -q "libtroupe.so.0 => $libdir/" ||
	fail "hello does not load the packaged libtroupe.so.0"
out=$("$T/hello") || fail "hello (libtroupe from the package) failed"
[ "$out" = "$version" ] || fail "hello printed '$out'"
ok "a program built with pkg-config against libtroupe talks to the scheduler"

kill -TERM "$UP_PID"
wait "$UP_PID"
rc=$?
UP_PID=
[ "$rc" = 0 ] || { cat "$T/up.log" >&2; fail "troupe up exited $rc on SIGTERM"; }
echo "PASS"
