#!/usr/bin/env bash
# Install idstation on Raspberry Pi OS Bookworm (arm64). Idempotent: run it again to upgrade or repair.
#
#   sudo provisioning/install-pi.sh [--repo DIR] [--prefix /opt/idstation] [--no-apt] [--no-firmware]
#                                   [--root DIR] [--dry-run]
#
# What it does (docs/provisioning.md, docs/deployment.md):
#  1. apt: pcscd, python3-picamera2, python3-pyscard (pyscard has no aarch64 wheel; Debian's package
#     is seen through the venv's system site packages, so nothing is compiled), python3-numpy, venv.
#  2. the static service user "idstation" (groups video, gpio), state dir /var/lib/idstation (0700).
#  3. a venv at PREFIX/venv with --system-site-packages (sees picamera2, pyscard, Debian's numpy);
#     every Python dependency comes as a wheel (--only-binary=:all:): no compiler on the box.
#     numpy stays below 2 so the venv never shadows Debian's numpy 1.x that picamera2's modules need.
#  4. /usr/local/bin/idstation, the systemd unit, the pcscd polkit rule, udev/modprobe/journald/
#     systemd drop-ins, the default configuration (kept if present), config.txt camera lines.
#  5. systemctl daemon-reload, enable pcscd and idstation (started once provisioned).
#
# --root DIR   install the files under DIR instead of / and skip apt, users, pip and systemctl
#              (for tests and image builds). --dry-run prints the commands it would run.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/idstation
ROOT=""
APT=1
FIRMWARE=1
DRY=0
SERVICE_USER=idstation
APT_PACKAGES=(pcscd libpcsclite1 python3-picamera2 python3-pyscard python3-numpy python3-venv python3-pip)

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --repo) REPO="$2"; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        --root) ROOT="${2%/}"; shift 2 ;;
        --no-apt) APT=0; shift ;;
        --no-firmware) FIRMWARE=0; shift ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install-pi.sh: unknown option $1" >&2; usage 2 ;;
    esac
done

log() { printf 'install-pi: %s\n' "$*"; }

# Commands with effects outside the file tree: printed in --dry-run, skipped under --root.
run() {
    if [ "$DRY" = 1 ]; then printf '+ %s\n' "$*"; return 0; fi
    if [ -n "$ROOT" ]; then log "skipped under --root: $*"; return 0; fi
    "$@"
}

# Install one file (mode) only when its content differs; creates parent directories.
put() {
    local src="$1" dst="$ROOT$2" mode="$3"
    if [ "$DRY" = 1 ]; then printf '+ install -m %s %s %s\n' "$mode" "$src" "$dst"; return 0; fi
    mkdir -p "$(dirname "$dst")"
    if [ -f "$dst" ] && cmp -s "$src" "$dst"; then chmod "$mode" "$dst"; return 0; fi
    install -m "$mode" "$src" "$dst.idstation-new"
    mv -f "$dst.idstation-new" "$dst"
    log "installed $2"
}

check_platform() {
    [ -n "$ROOT" ] || [ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || { echo "install-pi.sh: run as root" >&2; exit 1; }
    if [ -r /etc/os-release ] && ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then
        log "warning: not Raspberry Pi OS / Debian bookworm; continuing"
    fi
    [ -f "$REPO/pyproject.toml" ] || { echo "install-pi.sh: $REPO is not the idstation source tree" >&2; exit 2; }
}

install_apt() {
    [ "$APT" = 1 ] || return 0
    run env DEBIAN_FRONTEND=noninteractive apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
}

create_user() {
    if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && id "$SERVICE_USER" >/dev/null 2>&1; then
        run usermod -a -G video,gpio "$SERVICE_USER" 2>/dev/null || true
    else
        for group in video gpio; do
            getent group "$group" >/dev/null 2>&1 || run groupadd --system "$group"
        done
        run useradd --system --user-group --home-dir /var/lib/idstation --no-create-home \
            --shell /usr/sbin/nologin --groups video,gpio "$SERVICE_USER"
    fi
    if [ "$DRY" = 1 ]; then printf '+ install -d -m 0700 %s\n' "$ROOT/var/lib/idstation"; return 0; fi
    install -d -m 0700 "$ROOT/var/lib/idstation"
    [ -n "$ROOT" ] || chown "$SERVICE_USER:$SERVICE_USER" /var/lib/idstation
}

install_venv() {
    local venv="$PREFIX/venv" wheels
    if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && [ -x "$venv/bin/python" ]; then
        log "venv $venv exists: upgrading in place"
    else
        run python3 -m venv --system-site-packages "$venv"
    fi
    wheels="$(mktemp -d)"
    # Our own package is pure Python: build its wheel (no compiler), then install everything as wheels.
    run "$venv/bin/pip" wheel --no-deps --wheel-dir "$wheels" "$REPO"
    printf 'numpy<2\n' > "$wheels/constraints.txt"
    # The wheel file itself (never the name "idstation" from an index: no dependency confusion).
    # with the box extra (QR decoding, pairing QR): the central server's stack is not installed here
    local wheel=("$wheels"/idstation-*.whl)
    run "$venv/bin/pip" install --upgrade --only-binary=:all: --constraint "$wheels/constraints.txt" \
        "${wheel[0]}[box]"
    run "$venv/bin/python" -c "import idstation.agent.cli, smartcard, picamera2"
    rm -rf "$wheels"
    if [ "$DRY" = 1 ]; then printf '+ ln -sfn %s/bin/idstation %s\n' "$venv" "$ROOT/usr/local/bin/idstation"; return; fi
    mkdir -p "$ROOT/usr/local/bin"
    ln -sfn "$venv/bin/idstation" "$ROOT/usr/local/bin/idstation"
}

install_files() {
    local fw="$REPO/firmware_cfg"
    put "$REPO/systemd/idstation.service" /etc/systemd/system/idstation.service 0644
    put "$fw/pcscd-polkit.rules" /etc/polkit-1/rules.d/60-idstation-pcscd.rules 0644
    put "$fw/os/99-idstation.rules" /etc/udev/rules.d/99-idstation.rules 0644
    put "$fw/os/blacklist-pn533.conf" /etc/modprobe.d/blacklist-idstation-pn533.conf 0644
    put "$fw/os/system.conf.d-idstation.conf" /etc/systemd/system.conf.d/idstation.conf 0644
    put "$fw/os/journald.conf.d-idstation.conf" /etc/systemd/journald.conf.d/idstation.conf 0644
    if [ -e "$ROOT/etc/idstation/idstation.toml" ]; then
        log "keeping existing /etc/idstation/idstation.toml"
    else
        put "$fw/idstation.toml" /etc/idstation/idstation.toml 0644
    fi
}

# Append the camera/watchdog lines to config.txt once, between markers (replaced on re-run).
patch_config_txt() {
    [ "$FIRMWARE" = 1 ] || return 0
    local cfg="$ROOT/boot/firmware/config.txt" begin="# >>> idstation >>>" end="# <<< idstation <<<"
    if [ "$DRY" = 1 ]; then printf '+ update idstation block in %s\n' "$cfg"; return 0; fi
    [ -f "$cfg" ] || { [ -n "$ROOT" ] && mkdir -p "$(dirname "$cfg")" && : > "$cfg"; } || {
        log "no $cfg: skipping firmware settings"; return 0; }
    local tmp="$cfg.idstation-new"
    awk -v b="$begin" -v e="$end" '$0==b{skip=1} !skip{print} $0==e{skip=0}' "$cfg" > "$tmp"
    { printf '%s\n' "$begin"; cat "$REPO/firmware_cfg/os/config.txt.fragment"; printf '%s\n' "$end"; } >> "$tmp"
    if cmp -s "$tmp" "$cfg"; then rm -f "$tmp"; else mv -f "$tmp" "$cfg"; log "updated /boot/firmware/config.txt (reboot)"; fi
}

enable_services() {
    run systemctl daemon-reload
    run udevadm control --reload
    run systemctl enable pcscd.socket
    run systemctl enable idstation.service
    log "done. Next: sudo -u $SERVICE_USER idstation provision init --site SITE --counter COUNTER"
}

main() {
    check_platform
    install_apt
    create_user
    install_venv
    install_files
    patch_config_txt
    enable_services
}

main
