#!/usr/bin/env bash
# Install the station as a systemd service on a Raspberry Pi (Raspberry Pi OS bookworm or later).
#
#   sudo bash systemd/install.sh            # from the repository; `sudo make install` does this
#   bash systemd/install.sh --dry-run       # print what would be done, change nothing (no root needed)
#
# What it does, each step safe to repeat (re-run it to update the code):
#   1. system user `playout` (no login shell, home /var/lib/playout), in groups gpio and audio
#   2. the repository copied to /opt/playout (without .venv, .git, var), owned by root: read-only code
#   3. /opt/playout/.venv from requirements-runtime.lock (hashes checked): the run-time packages of
#      requirements.lock, without its development tools
#   4. /etc/playout/schedule.yaml from the repository's, with data under /var/lib/playout,
#      ONLY if absent: the station's own settings are never overwritten
#   5. Piper's packages (requirements-piper.lock) only if tts.engines lists piper; then anything else
#      in the venv (an earlier full install's test tools) is removed
#   6. /var/lib/playout/bulletins/{inbox,approved} for the station's scripts
#   7. the unit in /etc/systemd/system, daemon-reload, enable --now (restart if it was running)
# System packages (ffmpeg, espeak-ng, PortAudio, ...) come from `make system-packages`.
set -euo pipefail

APP=playout
PREFIX=/opt/playout
VENV=$PREFIX/.venv
CONF_DIR=/etc/playout
CONFIG=$CONF_DIR/schedule.yaml
DATA=/var/lib/playout
UNIT=playout.service
UNIT_DIR=/etc/systemd/system
GROUPS_NEEDED=(gpio audio)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=0
# shellcheck source=systemd/common.sh
. "$REPO/systemd/common.sh"

usage() {
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

for arg in "$@"; do
    case $arg in
        -n | --dry-run) DRY_RUN=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

for f in pyproject.toml requirements-runtime.lock requirements-piper.lock schedule.yaml "systemd/$UNIT"; do
    if [ ! -f "$REPO/$f" ]; then
        echo "install.sh: $REPO/$f not found: run this from the playout repository" >&2
        exit 1
    fi
done
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo make install), or with --dry-run to see the steps" >&2
    exit 1
fi
[ "$DRY_RUN" = 1 ] && say "dry run: nothing will be changed"
# Code, venv and config must be readable by the service user whatever root's umask is.
umask 022

# -- 1. user and groups ------------------------------------------------------------------------------
say "system user $APP (groups: ${GROUPS_NEEDED[*]})"
for group in "${GROUPS_NEEDED[@]}"; do
    # Raspberry Pi OS has both (udev gives /dev/gpiochip* to gpio, /dev/snd/* to audio); elsewhere
    # create them so the unit's SupplementaryGroups= resolves.
    if ! getent group "$group" >/dev/null; then
        run groupadd --system "$group"
    fi
done
if getent passwd "$APP" >/dev/null; then
    echo "   user $APP exists"
else
    run useradd --system --user-group --home-dir "$DATA" --no-create-home \
        --shell /usr/sbin/nologin --comment "Ward loudspeaker station" "$APP"
fi
run usermod --append --groups "$(IFS=,; echo "${GROUPS_NEEDED[*]}")" "$APP"

# -- 2. code, 3. venv (systemd/common.sh) ----------------------------------------------------------
install_code
install_venv

# -- 4. configuration --------------------------------------------------------------------------------
say "configuration $CONFIG"
run install -d -o root -g root -m 0755 "$CONF_DIR"
if [ -e "$CONFIG" ]; then
    echo "   $CONFIG exists: kept as it is (the station's own settings)"
else
    # The repository's settings, with data and scripts under the state directory. Readable by the
    # service's group only: the file may hold an API token.
    printf '+ sed (paths.data=%s, paths.bulletins=%s) %s > %s\n' "$DATA" "$DATA/bulletins" \
        "$REPO/schedule.yaml" "$CONFIG"
    if [ "$DRY_RUN" = 0 ]; then
        tmp=$(mktemp "$CONF_DIR/.schedule.yaml.XXXXXX")
        sed -e '/^paths:/,/^[^ #]/{' \
            -e "s|^  bulletins:.*|  bulletins: $DATA/bulletins  # inbox/ (waiting for approval) and approved/|" \
            -e "s|^  data:.*|  data: $DATA  # database and render cache|" \
            -e '}' "$REPO/schedule.yaml" >"$tmp"
        if ! grep -q "^  data: $DATA " "$tmp" || ! grep -q "^  bulletins: $DATA/bulletins " "$tmp"; then
            # The repository's file has no paths section to edit: add one.
            printf '\npaths:\n  bulletins: %s/bulletins\n  data: %s\n' "$DATA" "$DATA" >>"$tmp"
        fi
        chown root:"$APP" "$tmp"
        chmod 0640 "$tmp"
        mv "$tmp" "$CONFIG"
    fi
fi
if [ "$DRY_RUN" = 0 ]; then
    # Refuse to install a service that would crash on its configuration; prints every problem.
    "$VENV/bin/playout" config --config "$CONFIG" >/dev/null
fi

# -- 5. Piper ----------------------------------------------------------------------------------------
# onnxruntime and Piper weigh more than the rest of the station and only a Piper voice uses them: installed
# when the configuration lists the engine (re-run this script after adding it).
locks=("$PREFIX/requirements-runtime.lock")
if [ "$DRY_RUN" = 1 ]; then
    say "Piper voice: only if tts.engines in $CONFIG lists piper"
    uses_piper=1
else
    uses_piper=$("$VENV/bin/python" -c 'import sys; from playout.config import load_config
print(int("piper" in load_config(sys.argv[1]).tts.engines))' "$CONFIG")
    say "Piper voice: $([ "$uses_piper" = 1 ] && echo "configured" || echo "not configured, not installed")"
fi
if [ "$uses_piper" = 1 ]; then
    locks+=("$PREFIX/requirements-piper.lock")
    run "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
        -r "$PREFIX/requirements-runtime.lock" -r "$PREFIX/requirements-piper.lock"
fi
# The venv holds what the locks pin and nothing else: a venv an earlier install filled from the full
# requirements.lock still has pytest, Playwright, ... (and Piper's packages once Piper is dropped).
run "$VENV/bin/python" - "${locks[@]}" <<'PRUNE'
import re, subprocess, sys
from importlib.metadata import distributions

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

keep = {"pip", "playout"}
for lock in sys.argv[1:]:
    with open(lock, encoding="utf-8") as f:
        keep |= {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9._-]+)==", f.read(), re.M)}
installed = {d.metadata["Name"] for d in distributions()} - {None}
extra = sorted(name for name in installed if norm(name) not in keep)
if extra:
    print("   removing what the locks do not pin:", " ".join(extra))
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *extra], check=True)
PRUNE

# -- 6. data -----------------------------------------------------------------------------------------
say "data in $DATA"
run install -d -o "$APP" -g "$APP" -m 0750 "$DATA" "$DATA/bulletins" "$DATA/bulletins/inbox" \
    "$DATA/bulletins/approved"

# -- 7. service --------------------------------------------------------------------------------------
say "systemd unit $UNIT_DIR/$UNIT"
was_active=0
if [ "$DRY_RUN" = 0 ] && systemctl is-active --quiet "$UNIT"; then
    was_active=1
fi
run install -o root -g root -m 0644 "$REPO/systemd/$UNIT" "$UNIT_DIR/$UNIT"
run systemctl daemon-reload
run systemctl enable --now "$UNIT"
if [ "$was_active" = 1 ]; then
    # enable --now leaves a running service alone; it must pick up the new code.
    run systemctl restart "$UNIT"
fi

say "done. Status: systemctl status $APP   Logs: journalctl -u $APP -f"
