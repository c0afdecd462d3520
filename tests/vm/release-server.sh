#!/bin/bash
# release-server.sh start ROOT | stop | port | ca
#
# Serves a release directory (repo/ and channels/, as dreamlink-image
# publish writes it) over HTTPS on host loopback with nginx, the way a real
# release server would. Guests reach it through qemu's user network at
# https://10.0.2.2:PORT (slirp maps the gateway address to host loopback);
# `ca` prints the path of the test CA that signed the server's certificate
# (made once, kept in the cache), for the guest's CAFile=.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/tools/lib.sh"
. "$here/host.sh"

dir=${VM_RUN_DIR:-/tmp/dreamlink-vm}/release-server
tls=$DREAMLINK_CACHE/vm/tls

# A test CA and a certificate for the addresses the server is reached at.
make_tls() {
        [ -f "$tls/server.pem" ] && return 0
        mkdir -p "$tls"
        openssl req -x509 -newkey ed25519 -nodes -days 3650 -subj /CN=dreamlink-test-ca \
                -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
        openssl req -newkey ed25519 -nodes -subj /CN=dreamlink-release-server \
                -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:10.0.2.2,IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$tls/ext.cnf"
        openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
                -days 3650 -extfile "$tls/ext.cnf" -out "$tls/server.pem.tmp" 2>/dev/null
        mv "$tls/server.pem.tmp" "$tls/server.pem"
}

free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd_stop() {
        if [ -f "$dir/nginx.pid" ]; then
                kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
                for _ in $(seq 50); do [ -f "$dir/nginx.pid" ] || break; sleep 0.1; done
        fi
        rm -f "$dir/port"
}

cmd_start() {
        local root port
        root=$(cd "$1" && pwd)
        [ -d "$root/repo" ] && [ -d "$root/channels" ] || die "$root is not a release directory (repo/, channels/)"
        vm_host_packages
        make_tls
        cmd_stop
        mkdir -p "$dir/tmp"
        port=$(free_port)
        cat >"$dir/nginx.conf" <<EOF
daemon on;
# The release tree lives in the invoking user's cache (root's, mode 0700).
user root root;
pid $dir/nginx.pid;
error_log $dir/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
        access_log $dir/access.log;
        client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
        uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
        types { application/json json; }
        default_type application/octet-stream;
        sendfile on;
        server {
                listen 127.0.0.1:$port ssl;
                ssl_certificate $tls/server.pem;
                ssl_certificate_key $tls/server.key;
                root $root;
                autoindex off;
        }
}
EOF
        nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
        echo "$port" >"$dir/port"
        echo "$port"
}

case ${1:-} in
start) [ $# -eq 2 ] || die "usage: release-server.sh start ROOT"; cmd_start "$2" ;;
stop) cmd_stop ;;
port) cat "$dir/port" ;;
ca) make_tls; echo "$tls/ca.pem" ;;
*) die "usage: release-server.sh start ROOT | stop | port | ca" ;;
esac
