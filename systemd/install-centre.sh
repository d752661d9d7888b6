#!/usr/bin/env bash
# Install a province or district centre as a systemd service (Debian bookworm or later).
#
#   sudo bash systemd/install-centre.sh            # from the repository; `sudo make install-centre` does this
#   bash systemd/install-centre.sh --dry-run       # print what would be done, change nothing (no root needed)
#   sudo PLAYOUT_CENTRE_BROKER_HOST=centre.example.vn bash systemd/install-centre.sh
#
# What it does, each step safe to repeat (re-run it to update the code):
#   1. Mosquitto (Debian package mosquitto) if missing. The centre runs its own broker with its own
#      config, so Debian's mosquitto.service, which the package enables on port 1883, is disabled when this
#      run installed the package (a mosquitto that was already there is left alone, with a warning)
#   2. system user `playout-centre` (no login shell, home /var/lib/playout-centre)
#   3. the repository copied to /opt/playout and /opt/playout/.venv from requirements-runtime.lock, as
#      install.sh does (a station on the same machine shares them)
#   4. /var/lib/playout-centre, and `playout centre init` there as playout-centre ONLY if it holds no
#      centre yet: an existing centre's keys and settings are never replaced
#   5. the unit in /etc/systemd/system, daemon-reload, enable --now (restart if it was running)
#   6. the next steps: accounts, approvers, stations
# The broker's address (the stations connect to it; Mosquitto listens on it), used by init only:
# PLAYOUT_CENTRE_BROKER_HOST, else this machine's name if it resolves to a non-loopback address.
# PLAYOUT_CENTRE_BROKER_TLS: 1 (the default) makes the broker's own CA and certificate and listens with TLS,
# so station passwords never cross the network in clear; 0 for plain MQTT (a closed private network only).
# PLAYOUT_CENTRE_BROKER_PORT: 8883 with TLS, 1883 without, unless set.
set -euo pipefail

APP=playout-centre
PREFIX=/opt/playout
VENV=$PREFIX/.venv
DATA=/var/lib/playout-centre
UNIT=playout-centre.service
UNIT_DIR=/etc/systemd/system
HTTP_PORT=8090
BROKER_TLS=${PLAYOUT_CENTRE_BROKER_TLS:-1}
case $BROKER_TLS in
    0) BROKER_PORT=${PLAYOUT_CENTRE_BROKER_PORT:-1883} ;;
    1) BROKER_PORT=${PLAYOUT_CENTRE_BROKER_PORT:-8883} ;;
    *) echo "install-centre.sh: PLAYOUT_CENTRE_BROKER_TLS=$BROKER_TLS: use 1 (TLS) or 0 (plain MQTT)" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=0
# shellcheck source=systemd/common.sh
. "$REPO/systemd/common.sh"

usage() {
    sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

for arg in "$@"; do
    case $arg in
        -n | --dry-run) DRY_RUN=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install-centre.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

warn() { printf '!!  %s\n' "$*" >&2; }

for f in pyproject.toml requirements-runtime.lock "systemd/$UNIT"; do
    if [ ! -f "$REPO/$f" ]; then
        echo "install-centre.sh: $REPO/$f not found: run this from the playout repository" >&2
        exit 1
    fi
done
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "install-centre.sh: run as root (sudo make install-centre), or with --dry-run to see the steps" >&2
    exit 1
fi
[ "$DRY_RUN" = 1 ] && say "dry run: nothing will be changed"
umask 022

# -- 0. the broker's address, checked before anything changes ------------------------------------------
# Only a new centre needs it: init writes it into centre.yaml, Mosquitto listens on it and every station's
# fleet.yaml names it. Debian maps the machine's own name to 127.0.1.1, which no station can reach; a
# broker listening there would leave the whole fleet without status or doorbell, so that is refused.
has_centre=0
[ -e "$DATA/centre.yaml" ] && has_centre=1
broker_host=""
if [ "$has_centre" = 0 ]; then
    explicit=0
    if [ -n "${PLAYOUT_CENTRE_BROKER_HOST:-}" ]; then
        broker_host=$PLAYOUT_CENTRE_BROKER_HOST
        explicit=1
    else
        broker_host=$(hostname --fqdn 2>/dev/null || true)
        [ -n "$broker_host" ] || broker_host=$(hostname)
    fi
    case $broker_host in
        0.0.0.0 | :: | '[::]')
            echo "install-centre.sh: PLAYOUT_CENTRE_BROKER_HOST=$broker_host: các trạm không kết nối tới" \
                "địa chỉ này được; hãy dùng tên miền hoặc địa chỉ IP của máy trung tâm" >&2
            exit 1
            ;;
    esac
    addresses=$(getent ahosts "$broker_host" | awk '{print $1}' | sort -u | paste -sd ' ' - || true)
    if [ -z "${addresses// /}" ]; then
        echo "install-centre.sh: không phân giải được tên $broker_host: đặt" \
            "PLAYOUT_CENTRE_BROKER_HOST=<tên miền hoặc địa chỉ IP mà các trạm tới được> rồi chạy lại" >&2
        exit 1
    fi
    outside=0
    for a in $addresses; do
        case $a in
            127.* | ::1) ;;
            *) outside=1 ;;
        esac
    done
    if [ "$outside" = 0 ]; then
        if [ "$explicit" = 1 ]; then
            # Asked for: a centre tried out on one machine.
            warn "máy chủ MQTT sẽ nghe trên $broker_host ($addresses):" \
                "chỉ chương trình trên máy này kết nối được"
        else
            echo "install-centre.sh: tên máy $broker_host chỉ trỏ về địa chỉ nội bộ ($addresses): các trạm" \
                "sẽ không tới được máy chủ MQTT. Chạy lại với" \
                "PLAYOUT_CENTRE_BROKER_HOST=<tên miền hoặc địa chỉ IP mà các trạm tới được>" >&2
            exit 1
        fi
    fi
fi

# -- 1. Mosquitto ------------------------------------------------------------------------------------
say "Mosquitto (the centre runs its own broker: mosquitto.service stays off)"
installed_mosquitto=0
if dpkg-query -W -f='${Status}' mosquitto 2>/dev/null | grep -q "ok installed"; then
    echo "   mosquitto is installed"
else
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto
    installed_mosquitto=1
fi
if [ "$installed_mosquitto" = 1 ]; then
    # The package enables and starts Debian's broker on port 1883; nobody here asked for it, and on the
    # centre's address it would hold the port the centre's broker needs. Package upgrades keep it disabled.
    run systemctl disable --now mosquitto.service
elif [ "$DRY_RUN" = 0 ] && systemctl is-active --quiet mosquitto.service; then
    # Installed before, maybe for something else: not ours to stop.
    warn "mosquitto.service (máy chủ MQTT của Debian) đang chạy. Nếu nó cũng nghe cổng $BROKER_PORT trên" \
        "địa chỉ của trung tâm, máy chủ MQTT của trung tâm không khởi động được: khi không cần đến nó," \
        "tắt bằng: systemctl disable --now mosquitto"
fi

# -- 2. user -----------------------------------------------------------------------------------------
say "system user $APP"
if getent passwd "$APP" >/dev/null; then
    echo "   user $APP exists"
else
    run useradd --system --user-group --home-dir "$DATA" --no-create-home \
        --shell /usr/sbin/nologin --comment "Province broadcast centre" "$APP"
fi

# -- 3. code and venv (systemd/common.sh, as install.sh steps 2 and 3) ------------------------------
install_code
install_venv
# Not pruned to the lock as install.sh does: a station on this machine may have Piper's packages in the
# same venv, and they would go.

# -- 4. the centre's folder --------------------------------------------------------------------------
say "centre in $DATA"
run install -d -o "$APP" -g "$APP" -m 0750 "$DATA"
if [ "$has_centre" = 1 ]; then
    echo "   $DATA/centre.yaml exists: the centre is kept as it is (keys, stations, accounts)"
    if grep -q '^broker: null' "$DATA/centre.yaml"; then
        warn "$DATA/centre.yaml không có máy chủ MQTT (init không có --broker-host): trung tâm chạy" \
            "không có trạng thái trạm và chuông báo"
    fi
else
    # As the service's user: the keys and Mosquitto's files are 0600 and must be the service's. From the
    # folder itself, so the user can read its working directory. A half-made centre (init interrupted)
    # makes init refuse: nothing is overwritten.
    init=(runuser -u "$APP" -- "$VENV/bin/playout" centre init "$DATA" --broker-host "$broker_host"
        --broker-port "$BROKER_PORT")
    # Behind NAT the public name is not an address of this machine: Mosquitto then listens on this one.
    if [ -n "${PLAYOUT_CENTRE_BROKER_LISTEN:-}" ]; then
        init+=(--broker-listen "$PLAYOUT_CENTRE_BROKER_LISTEN")
    fi
    if [ "$BROKER_TLS" = 1 ]; then
        init+=(--broker-tls)
    fi
    printf '+ cd %s && %s\n' "$DATA" "${init[*]}"
    if [ "$DRY_RUN" = 0 ]; then
        (cd "$DATA" && "${init[@]}")
    fi
fi

# -- 5. service --------------------------------------------------------------------------------------
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
if [ "$DRY_RUN" = 0 ] && systemctl is-active --quiet playout.service; then
    # The same /opt/playout: a station here keeps running the old code until it restarts (not done here:
    # a restart mid-bulletin cuts it off).
    warn "playout.service (trạm) trên máy này vẫn chạy mã cũ: khởi động lại khi không phát tin" \
        "(systemctl restart playout)"
fi

# -- 6. next steps -----------------------------------------------------------------------------------
host_hint=${broker_host:-ĐỊA_CHỈ_TRUNG_TÂM}
cli="sudo -u $APP $VENV/bin/playout centre"
cat <<EOF
==> xong. Trạng thái: systemctl status $APP   Nhật ký: journalctl -u $APP -f

Các bước tiếp theo (chạy với người dùng $APP, để các tệp của trung tâm vẫn thuộc về nó):
  1. Tài khoản quản trị trang trung tâm (hỏi mật khẩu):
       $cli account $DATA TÊN --role admin
  2. Mỗi người duyệt tin: khóa ký (in mã truy cập một lần) và tài khoản đăng nhập cùng tên:
       $cli approver $DATA TÊN
       $cli account $DATA TÊN --role approver
     Người soạn tin: --role operator; kỹ thuật viên: --role technician.
  3. Mỗi trạm:
       $cli station $DATA MÃ_TRẠM --centre-url http://$host_hint:$HTTP_PORT/
     rồi chép các tệp trong $DATA/stations/MÃ_TRẠM/ sang trạm (cả broker-ca.pem khi MQTT qua TLS)
     và dán fleet.yaml vào schedule.yaml.
  Tường lửa: mở cổng $HTTP_PORT/tcp (HTTP cho trạm và trang trung tâm; hoặc đặt sau nginx có TLS) và
  $BROKER_PORT/tcp (MQTT) cho các trạm. Trang trung tâm: http://$host_hint:$HTTP_PORT/
EOF
