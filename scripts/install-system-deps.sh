#!/usr/bin/env bash
# Ensure the system-level dependencies used by voxtrace's tests are present.
#
#   scripts/install-system-deps.sh [pgvector] [chromium] [docker-compose]
#
# With no arguments all three components are handled. Idempotent: when
# everything is already present it only checks (well under a second).
# Installing needs root; Debian bookworm and Debian's package mirrors only.
#
#   chromium        /usr/bin/chromium           (Debian package chromium)
#   docker-compose  the docker-compose command  (Debian package docker-compose)
#   pgvector        the "vector" extension in the local PostgreSQL server.
#                   Bookworm has no pgvector package, so the source package
#                   from trixie is fetched with a private apt configuration
#                   (the system's apt sources are not touched) and built
#                   against postgresql-server-dev-<server major>. The built
#                   tree is kept in $VOXTRACE_PGVECTOR_DIR/src; to remove it:
#                     make -C /var/cache/voxtrace-pgvector/src uninstall \
#                       PG_CONFIG=/usr/lib/postgresql/<major>/bin/pg_config
#
# Environment overrides (all optional):
#   VOXTRACE_PG_HOST / VOXTRACE_PG_PORT / VOXTRACE_PG_USER
#                               server to check (127.0.0.1 / 5432 / postgres)
#   VOXTRACE_PGVECTOR_DIR       cache dir (/var/cache/voxtrace-pgvector)
#   VOXTRACE_PGVECTOR_SUITE     Debian suite to take the source from (trixie)
#   VOXTRACE_DEBIAN_MIRROR      mirror for that (http://deb.debian.org/debian)
#   VOXTRACE_PGVECTOR_REFETCH=1 fetch the source again instead of reusing
#                               a previously built tree
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PG_HOST=${VOXTRACE_PG_HOST:-127.0.0.1}
PG_PORT=${VOXTRACE_PG_PORT:-5432}
PG_USER=${VOXTRACE_PG_USER:-postgres}
PGV_DIR=${VOXTRACE_PGVECTOR_DIR:-/var/cache/voxtrace-pgvector}
PGV_SRC=$PGV_DIR/src
PGV_SUITE=${VOXTRACE_PGVECTOR_SUITE:-trixie}
DEBIAN_MIRROR=${VOXTRACE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
LOCK_FILE=/run/lock/voxtrace-system-deps.lock
[[ -d /run/lock ]] || LOCK_FILE=${TMPDIR:-/tmp}/voxtrace-system-deps.lock

APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600)
LOG=""          # created lazily, only when something has to be done
APT_UPDATED=0
LOCKED=0
MISSING=()      # non-root: what would have to be installed

say() { echo "system deps: $*"; }
die() { echo "system deps: ERROR: $*" >&2; exit 1; }

usage() {
  echo "usage: $0 [pgvector] [chromium] [docker-compose]   (no args: all)"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

ensure_log() {
  if [[ -z $LOG ]]; then
    LOG=$(mktemp "${TMPDIR:-/tmp}/voxtrace-system-deps.XXXXXX.log")
  fi
}

# Run a command with its output going to the log; on failure show the tail.
run() {
  ensure_log
  echo "+ $*" >>"$LOG"
  local rc=0
  "$@" >>"$LOG" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "system deps: ERROR: command failed (exit $rc): $*" >&2
    echo "----- last 40 lines of $LOG -----" >&2
    tail -n 40 "$LOG" >&2
    echo "----- end of log -----" >&2
    exit "$rc"
  fi
}

# Serialise installs between concurrent runs of this script (apt itself
# also waits for the dpkg lock via DPkg::Lock::Timeout).
take_lock() {
  [[ $LOCKED -eq 1 ]] && return 0
  exec 9>"$LOCK_FILE"
  flock -w 1800 9 || die "timed out waiting for $LOCK_FILE"
  LOCKED=1
}

apt_update_once() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    run apt-get "${APT_OPTS[@]}" update
    APT_UPDATED=1
  fi
}

apt_install() {
  apt_update_once
  run apt-get "${APT_OPTS[@]}" install --no-install-recommends "$@"
}

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

pkg_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true
}

need_root() {  # <component> <what to install>
  MISSING+=("$1: $2")
  echo "system deps: $1 is missing (not root, cannot install)" >&2
}

# ---------------------------------------------------------------- chromium
do_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    say "chromium $(pkg_version chromium) already installed"
    return
  fi
  if ! is_root; then
    need_root chromium "apt-get install chromium"
    return
  fi
  take_lock
  if [[ ! -x /usr/bin/chromium ]]; then
    say "installing chromium..."
    apt_install chromium fonts-liberation
    [[ -x /usr/bin/chromium ]] || die "chromium installed but /usr/bin/chromium is missing"
    say "chromium $(pkg_version chromium) installed"
  else
    say "chromium $(pkg_version chromium) already installed"
  fi
}

# ---------------------------------------------------------- docker-compose
do_docker_compose() {
  if command -v docker-compose >/dev/null 2>&1; then
    say "docker-compose $(pkg_version docker-compose) already installed"
    return
  fi
  if ! is_root; then
    need_root docker-compose "apt-get install docker-compose"
    return
  fi
  take_lock
  if ! command -v docker-compose >/dev/null 2>&1; then
    say "installing docker-compose..."
    apt_install docker-compose
    hash -r
    command -v docker-compose >/dev/null 2>&1 ||
      die "docker-compose installed but the command is not on PATH"
    say "docker-compose $(pkg_version docker-compose) installed"
  else
    say "docker-compose $(pkg_version docker-compose) already installed"
  fi
}

# ---------------------------------------------------------------- pgvector
pg_query() {
  PGCONNECT_TIMEOUT=5 psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" \
    -d postgres -v ON_ERROR_STOP=1 -Atc "$1"
}

vector_version() {
  pg_query "select default_version from pg_available_extensions where name='vector'"
}

# Make sure the server answers; if a local cluster on our port is down,
# start it (root only). Settings are not touched.
ensure_pg_up() {
  command -v psql >/dev/null 2>&1 ||
    die "psql not found; install postgresql-client (and a PostgreSQL server on $PG_HOST:$PG_PORT)"
  pg_query "select 1" >/dev/null 2>&1 && return 0
  if is_root && command -v pg_lsclusters >/dev/null 2>&1; then
    local ver cluster port status rest
    while read -r ver cluster port status rest; do
      if [[ $port == "$PG_PORT" && $status == down ]]; then
        say "starting PostgreSQL cluster $ver/$cluster..."
        run pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start
      fi
    done < <(pg_lsclusters -h 2>/dev/null || true)
    local i
    for ((i = 0; i < 30; i++)); do
      pg_query "select 1" >/dev/null 2>&1 && return 0
      sleep 1
    done
  fi
  die "cannot connect to PostgreSQL at $PG_HOST:$PG_PORT as $PG_USER: $(pg_query 'select 1' 2>&1 | head -n 1)"
}

# Download the pgvector source package from $PGV_SUITE into $1 using a
# private apt configuration (own sources list, lists dir and cache).
fetch_pgvector_source() {
  local dl=$1 apt_dir=$PGV_DIR/apt
  [[ -r $DEBIAN_KEYRING ]] || apt_install debian-archive-keyring
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb-src [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR $PGV_SUITE main" \
    >"$apt_dir/sources.list"
  local priv=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
  )
  run apt-get "${APT_OPTS[@]}" "${priv[@]}" update
  rm -rf "$dl"
  mkdir -p "$dl"
  # let apt's unprivileged download user write there (avoids a warning)
  if id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
  (cd "$dl" && run apt-get "${APT_OPTS[@]}" "${priv[@]}" source --download-only pgvector)
}

install_pgvector() {
  local num major pg_config
  num=$(pg_query "show server_version_num")
  [[ $num =~ ^[0-9]+$ && $num -ge 100000 ]] ||
    die "unsupported PostgreSQL server_version_num '$num'"
  major=$((num / 10000))
  pg_config=/usr/lib/postgresql/$major/bin/pg_config

  local pkgs=() p
  for p in "postgresql-server-dev-$major" make gcc libc6-dev; do
    pkg_installed "$p" || pkgs+=("$p")
  done
  if [[ ${#pkgs[@]} -gt 0 ]]; then
    say "installing pgvector build deps: ${pkgs[*]}..."
    apt_install "${pkgs[@]}"
  fi
  [[ -x $pg_config ]] || die "$pg_config not found after installing postgresql-server-dev-$major"
  [[ -f $("$pg_config" --pgxs) ]] ||
    die "PGXS makefile missing ($("$pg_config" --pgxs)); is postgresql-server-dev-$major installed?"

  local stamp=$PGV_SRC/.voxtrace-build version=""
  if [[ ${VOXTRACE_PGVECTOR_REFETCH:-0} != 1 && -f $stamp ]] &&
     grep -qx "pg_major=$major" "$stamp"; then
    version=$(sed -n 's/^pgvector_version=//p' "$stamp")
    say "installing pgvector $version for PostgreSQL $major (cached source in $PGV_SRC)..."
  else
    say "installing pgvector for PostgreSQL $major (source from Debian $PGV_SUITE)..."
    local dl=$PGV_DIR/download orig
    fetch_pgvector_source "$dl"
    orig=$(find "$dl" -maxdepth 1 -name 'pgvector_*.orig.tar.*' | head -n 1)
    [[ -n $orig ]] || die "no pgvector .orig tarball downloaded into $dl"
    version=${orig##*/pgvector_}
    version=${version%.orig.tar.*}
    rm -rf "$PGV_SRC"
    mkdir -p "$PGV_SRC"
    # Debian's only patch (no-native) just drops -march=native; OPTFLAGS=
    # below does the same, so the upstream tarball is used as is.
    run tar -xf "$orig" -C "$PGV_SRC" --strip-components=1 --no-same-owner
    [[ -f $PGV_SRC/vector.control ]] || die "unexpected pgvector source layout in $PGV_SRC"
  fi

  run make -C "$PGV_SRC" -j"$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$pg_config" OPTFLAGS=
  run make -C "$PGV_SRC" install PG_CONFIG="$pg_config" OPTFLAGS=
  printf 'pg_major=%s\npgvector_version=%s\npg_config=%s\n' \
    "$major" "$version" "$pg_config" >"$stamp"
}

do_pgvector() {
  ensure_pg_up
  local v
  v=$(vector_version)
  if [[ -n $v ]]; then
    say "pgvector $v already installed"
    return
  fi
  if ! is_root; then
    local num major="<major>"
    num=$(pg_query "show server_version_num" 2>/dev/null || true)
    [[ $num =~ ^[0-9]+$ ]] && major=$((num / 10000))
    need_root pgvector "apt-get install postgresql-server-dev-$major make gcc, then build and 'make install' pgvector (Debian $PGV_SUITE source package, or https://github.com/pgvector/pgvector) with PG_CONFIG=/usr/lib/postgresql/$major/bin/pg_config -- or simply run this script as root"
    return
  fi
  take_lock
  v=$(vector_version)
  if [[ -n $v ]]; then
    say "pgvector $v already installed"
    return
  fi
  install_pgvector
  v=$(vector_version)
  [[ -n $v ]] || die "pgvector was built and installed but 'vector' is not in pg_available_extensions (see $LOG)"
  say "pgvector $v installed (source tree: $PGV_SRC)"
}

# -------------------------------------------------------------------- main
main() {
  local comps=() c
  for c in "$@"; do
    case $c in
      pgvector | chromium | docker-compose) ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown component '$c'" ;;
    esac
    [[ " ${comps[*]-} " == *" $c "* ]] || comps+=("$c")
  done
  [[ ${#comps[@]} -gt 0 ]] || comps=(pgvector chromium docker-compose)

  for c in "${comps[@]}"; do
    case $c in
      pgvector) do_pgvector ;;
      chromium) do_chromium ;;
      docker-compose) do_docker_compose ;;
    esac
  done

  if [[ ${#MISSING[@]} -gt 0 ]]; then
    echo "system deps: ERROR: missing and not running as root; as root, install:" >&2
    printf '  - %s\n' "${MISSING[@]}" >&2
    exit 1
  fi
  # Everything worked: the log is not needed any more.
  if [[ -n $LOG ]]; then rm -f "$LOG"; fi
}

main "$@"
