#!/usr/bin/env bash
# Builds a multi-disk test layout for corelog from loop devices: N sparse image files,
# each attached to a loop device, formatted (XFS if mkfs.xfs is there, else ext4) and
# mounted under one dir, with a data dir on each. Prints the log.dirs line to use.
#
#   scripts/loop-disks.sh [--count N] [--size SIZE] [--dir DIR] [--fs xfs|ext4] [--owner USER]
#   scripts/loop-disks.sh --teardown [--dir DIR]
#
# Defaults: 4 disks of 2G (sparse: they use only what is written) under
# /var/tmp/corelog-disks. Needs root, losetup and mkfs; in a container without loop
# devices or mount rights it says so and exits 1, undoing whatever it had done.
# --teardown unmounts, detaches and deletes everything a previous run made under DIR.
# Exit codes: 0 done, 1 this machine cannot (or a step failed), 2 bad arguments.
set -euo pipefail

count=4
size=2G
dir=/var/tmp/corelog-disks
fs=
owner=
teardown=false
# The most disks one layout may have (a loop device each).
count_max=32

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    printf 'loop-disks: %s\n' "$*" >&2
    exit 1
}

while (($#)); do
    case "$1" in
    --count) count=${2:?--count needs a number}; shift 2 ;;
    --size) size=${2:?--size needs a size such as 2G}; shift 2 ;;
    --dir) dir=${2:?--dir needs a path}; shift 2 ;;
    --fs) fs=${2:?--fs needs xfs or ext4}; shift 2 ;;
    --owner) owner=${2:?--owner needs a user}; shift 2 ;;
    --teardown) teardown=true; shift ;;
    -h | --help) usage ;;
    *) printf 'loop-disks: unknown argument %s\n' "$1" >&2; usage ;;
    esac
done

if ! [[ $count =~ ^[0-9]+$ ]] || ((count < 1 || count > count_max)); then
    printf 'loop-disks: --count must be 1..%d\n' "$count_max" >&2
    exit 2
fi
if [[ -n $fs && $fs != xfs && $fs != ext4 ]]; then
    printf 'loop-disks: --fs must be xfs or ext4\n' >&2
    exit 2
fi
dir=$(realpath -m "$dir")
state="$dir/loop-disks.state" # lines: <mount point> <loop device> <image file>

need_root() {
    (($(id -u) == 0)) || die "needs root (it attaches loop devices and mounts file systems): run it with sudo"
}

# Undoes what the state file lists, last first; keeps going past failures.
teardown_layout() {
    [[ -f $state ]] || { printf 'loop-disks: nothing to tear down under %s\n' "$dir" >&2; return 0; }
    local lines=() mnt dev img failed=0
    mapfile -t lines <"$state"
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r mnt dev img <<<"${lines[i]}"
        if mountpoint -q "$mnt"; then
            umount "$mnt" || { printf 'loop-disks: cannot unmount %s\n' "$mnt" >&2; failed=1; continue; }
        fi
        if [[ $dev != - ]] && losetup "$dev" >/dev/null 2>&1 &&
            [[ $(losetup --noheadings --output BACK-FILE "$dev" | sed 's/ *$//') == "$img" ]]; then
            losetup --detach "$dev" || { printf 'loop-disks: cannot detach %s\n' "$dev" >&2; failed=1; continue; }
        fi
        rm -f "$img"
        rmdir "$mnt" 2>/dev/null || true
    done
    if ((failed)); then
        die "some disks are still in use under $dir; stop what uses them and run --teardown again"
    fi
    rm -f "$state"
    rmdir "$dir/images" "$dir" 2>/dev/null || true
    printf 'loop-disks: removed the layout under %s\n' "$dir" >&2
}

if $teardown; then
    need_root
    teardown_layout
    exit 0
fi

need_root
command -v losetup >/dev/null || die "losetup (util-linux) is not installed"
if [[ -z $fs ]]; then
    if command -v mkfs.xfs >/dev/null; then fs=xfs
    elif command -v mkfs.ext4 >/dev/null; then fs=ext4
    else die "neither mkfs.xfs (xfsprogs) nor mkfs.ext4 (e2fsprogs) is installed"
    fi
fi
command -v "mkfs.$fs" >/dev/null || die "mkfs.$fs is not installed"
[[ -e /dev/loop-control ]] || die "no /dev/loop-control: this kernel or container has no loop devices"
[[ -f $state ]] && die "a layout already exists under $dir: use it, or run --teardown first"
if [[ -n $owner ]]; then
    id -u "$owner" >/dev/null 2>&1 || die "no such user: $owner"
fi

mkdir -p "$dir/images"
: >"$state"
# On any failure from here on, undo what was made.
trap 'status=$?; if ((status != 0)); then printf "loop-disks: undoing the partial layout\n" >&2; teardown_layout || true; fi' EXIT

log_dirs=()
for ((n = 1; n <= count; n++)); do
    img="$dir/images/d$n.img"
    mnt="$dir/d$n"
    truncate --size "$size" "$img" || die "cannot create the sparse file $img ($size)"
    mkdir -p "$mnt"
    printf '%s - %s\n' "$mnt" "$img" >>"$state"
    dev=$(losetup --find --show "$img" 2>&1) ||
        die "cannot attach a loop device ($dev): a container without loop devices, or all in use"
    # Record the device before anything else can fail.
    sed -i "\$s|^\\(.*\\) - \\(.*\\)\$|\\1 $dev \\2|" "$state"
    if [[ $fs == xfs ]]; then
        mkfs.xfs -q -f "$dev" || die "mkfs.xfs failed on $dev"
    else
        mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$dev" || die "mkfs.ext4 failed on $dev"
    fi
    out=$(mount "$dev" "$mnt" 2>&1) ||
        die "cannot mount $dev on $mnt ($out): mounting needs CAP_SYS_ADMIN, which a container may not have"
    mkdir -p "$mnt/data"
    if [[ -n $owner ]]; then
        chown "$owner": "$mnt/data"
    fi
    log_dirs+=("$mnt/data")
done
trap - EXIT

printf 'loop-disks: %d %s disks of %s under %s (--teardown removes them)\n' \
    "$count" "$fs" "$size" "$dir" >&2
(
    IFS=,
    printf 'log.dirs=%s\n' "${log_dirs[*]}"
)
