#!/usr/bin/env bash
# Run a throw-away Apache Kafka on 127.0.0.1 for development and tests: one
# KRaft node (broker and controller in one process) or a cluster of several,
# in plaintext or with TLS (SASL_SSL with SCRAM, or mutual TLS) -- no Docker
# and no tarball: the jars come from Maven Central through
# scripts/kafka/pom.xml, or from an existing install named by KAFKA_HOME.
#
# Usage: scripts/kafka/kafka.sh start|stop [N]|status [N]|fetch|kill [N]|resume [N]
#
#   start   Start KAFKA_BROKERS nodes (in parallel) and wait until they
#           serve requests and every broker is registered. Every start
#           wipes and re-formats the data dir, so each run begins with no
#           topics and no committed offsets. If nodes started by this script
#           with the same settings already serve, says so and exits 0; if
#           they run with other settings (node count, security, ports), they
#           are stopped and replaced.
#           Prints "kafka: ready on 127.0.0.1:PORT (Kafka X.Y.Z, pid N)" for
#           one node, "kafka: ready on 127.0.0.1:P1,127.0.0.1:P2,... (Kafka
#           X.Y.Z, 3 brokers, pids A B C)" for several (the security
#           protocol is named unless plaintext), then
#           "kafka: client settings in DIR/client.env".
#   stop    Stop the nodes started by `start` (SIGTERM, then SIGKILL after
#           KAFKA_STOP_TIMEOUT seconds). Exits 0 when nothing runs.
#   status  Exit 0 if every node serves; 1 if some node is down or not
#           serving; 3 if nothing runs. Prints one line per node (several).
#   fetch   Only download the jars into the cache (pre-warms set-up/CI).
#   kill    SIGKILL the nodes (a crash, for the fault suite).
#   resume  Start stopped or killed nodes again on their existing data dir:
#           topics, records, committed offsets, users and certificates are
#           kept. Waits until they serve (the others keep running).
#   With a node number N (1..KAFKA_BROKERS), stop, kill, resume and status
#   act on that node only; without one, on all of them. stop, kill, status
#   and resume act on the cluster that `start` recorded in the data dir, so
#   they need only KAFKA_PORT (or KAFKA_DATA_DIR), not the other settings.
#
# Environment (all optional):
#   KAFKA_VERSION          Kafka version fetched from Maven Central (4.3.1).
#   KAFKA_BROKERS          Number of nodes N (1). Each node is broker and
#                          controller (node ids 1..N; all N are voters of the
#                          KRaft controller quorum). With N >= 3, topics
#                          default to replication factor 3 and
#                          min.insync.replicas 2 (internal topics too);
#                          below 3, to 1 and 1.
#   KAFKA_SECURITY         plaintext (default), sasl_ssl or ssl.
#                          sasl_ssl: the client listeners are SASL_SSL with
#                          SCRAM-SHA-512; brokers talk to each other over it
#                          as user admin. Users admin and ocppgw get random
#                          passwords at every start (see client.env).
#                          ssl: the client listeners are SSL and require a
#                          client certificate signed by the generated CA
#                          (tls/client.crt and tls/client.key).
#                          Both generate a CA and certificates for
#                          127.0.0.1 and localhost with openssl (or keytool).
#                          The controller listeners stay PLAINTEXT.
#   KAFKA_PORT             Client port of node 1 on 127.0.0.1 (9092); node i
#                          listens on KAFKA_PORT+i-1.
#   KAFKA_CONTROLLER_PORT  KRaft controller port of node 1 on 127.0.0.1
#                          (KAFKA_PORT+N); node i uses KAFKA_CONTROLLER_PORT+i-1.
#   KAFKA_CACHE_DIR        Where the jars are cached; they go to its libs/
#                          sub-dir. Default:
#                          ${XDG_CACHE_HOME:-$HOME/.cache}/ocpp-gw/kafka-$KAFKA_VERSION
#   KAFKA_DATA_DIR         Config, logs, pid files, certificates and partition
#                          data; WIPED on every start. Default:
#                          ${XDG_CACHE_HOME:-$HOME/.cache}/ocpp-gw/kafka-data-$KAFKA_PORT
#   KAFKA_HOME             Use this Kafka install (must have
#                          bin/kafka-server-start.sh) instead of Maven jars.
#   KAFKA_HEAP_OPTS        Heap options of each node ("-Xmx512m -Xms256m").
#   KAFKA_OPTS             Extra JVM options for the nodes (none).
#   KAFKA_NUM_PARTITIONS   num.partitions of auto/default-created topics (8).
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable (false).
#   KAFKA_START_TIMEOUT    Seconds `start`/`resume` wait for readiness (90).
#   KAFKA_STOP_TIMEOUT     Seconds `stop` waits before SIGKILL (30).
#   KAFKA_PROXIED_PORT     Node i also listens on KAFKA_PROXIED_PORT+i-1,
#   KAFKA_PROXY_PORT       advertising 127.0.0.1:KAFKA_PROXY_PORT+i-1, so that
#                          clients which bootstrap through a TCP proxy on that
#                          port keep using it (the fault suite stalls it).
#                          Both or none. Same security as the client port.
#
# Needs: bash, java 17+, (unless KAFKA_HOME is used) mvn 3.6.3+, and for
# KAFKA_SECURITY other than plaintext openssl or keytool.
# Files in the data dir: client.env (after start: KEY=value lines for the
# gateway, e.g. `set -a; . DIR/client.env; set +a`; mode 600), cluster.conf
# (the settings of the last start), probe.properties (admin-client settings
# of the tools), tls/ (ca.pem, ca.key, broker.pem = key and chain of every
# node, client.crt, client.key). With one node, server.properties, broker.log
# (broker output), kafka.pid and kraft-logs/ (partition and metadata logs)
# are in the data dir itself; with several, in node-1/, node-2/, ...

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/pom.xml"

KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
KAFKA_BROKERS=${KAFKA_BROKERS:-1}
KAFKA_SECURITY=${KAFKA_SECURITY:-plaintext}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-}  # default set in check_settings
CONTROLLER_PORT_GIVEN=$KAFKA_CONTROLLER_PORT
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/ocpp-gw
KAFKA_CACHE_DIR=${KAFKA_CACHE_DIR:-$CACHE_ROOT/kafka-$KAFKA_VERSION}
KAFKA_DATA_DIR=${KAFKA_DATA_DIR:-$CACHE_ROOT/kafka-data-$KAFKA_PORT}
KAFKA_HOME=${KAFKA_HOME:-}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
KAFKA_OPTS=${KAFKA_OPTS:-}
KAFKA_NUM_PARTITIONS=${KAFKA_NUM_PARTITIONS:-8}
KAFKA_AUTO_CREATE_TOPICS=${KAFKA_AUTO_CREATE_TOPICS:-false}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_PROXIED_PORT=${KAFKA_PROXIED_PORT:-}
KAFKA_PROXY_PORT=${KAFKA_PROXY_PORT:-}

HOST=127.0.0.1
LIBS_DIR="$KAFKA_CACHE_DIR/libs"
LIBS_MARKER="$LIBS_DIR/.complete"
DATA_MARKER=".ocpp-gw-kafka-data"
STATE_FILE="$KAFKA_DATA_DIR/cluster.conf"
CLIENT_ENV="$KAFKA_DATA_DIR/client.env"
PROBE_PROPS="$KAFKA_DATA_DIR/probe.properties"
TLS_DIR="$KAFKA_DATA_DIR/tls"
ADMIN_USER="admin"
CLIENT_USER="ocppgw"
SCRAM="SCRAM-SHA-512"
# Small, fast-starting JVMs for the short-lived tools (format, probe).
TOOL_JVM_OPTS=(-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

# The cluster the commands act on (see use_requested and load_state) and its
# layout (see layout): node i has NODE_DIR[i], NODE_PORT[i], NODE_CTRL[i],
# and with a proxy NODE_PXD[i] (listen) and NODE_PXY[i] (advertised).
NODES=1 SECURITY=plaintext PORT=0 CPORT=0 PXD="" PXY="" ADMIN_PW="" CLIENT_PW=""
RECORDED=""  # settings recorded by the last start ("" for a pre-cluster data dir)
BOOTSTRAP=""
NODE_DIR=() NODE_PORT=() NODE_CTRL=() NODE_PXD=() NODE_PXY=()

say() { printf 'kafka: %s\n' "$*"; }
warn() { printf 'kafka: %s\n' "$*" >&2; }
die() {
    warn "error: $*"
    exit 1
}

# Dies unless node count $1, client port $2, controller port $3 and
# proxied port $4 (may be empty) give non-overlapping port ranges.
check_ports() {
    local n=$1 p=$2 c=$3 x=$4
    ((p > 0 && p + n - 1 < 65536)) || die "KAFKA_PORT out of range: $p (+$((n - 1)))"
    ((c > 0 && c + n - 1 < 65536)) || die "KAFKA_CONTROLLER_PORT out of range: $c (+$((n - 1)))"
    ((c > p + n - 1 || p > c + n - 1)) ||
        die "client ports $p-$((p + n - 1)) and controller ports $c-$((c + n - 1)) overlap"
    [[ -n $x ]] || return 0
    ((x > 0 && x + n - 1 < 65536)) || die "KAFKA_PROXIED_PORT out of range: $x (+$((n - 1)))"
    if ((!(x > p + n - 1 || p > x + n - 1) || !(x > c + n - 1 || c > x + n - 1))); then
        die "proxied ports $x-$((x + n - 1)) overlap the client or controller ports"
    fi
}

check_settings() {
    local name value
    for name in KAFKA_PORT KAFKA_BROKERS; do
        value=${!name}
        [[ $value =~ ^[0-9]+$ ]] || die "$name must be a number, got '$value'"
    done
    KAFKA_BROKERS=$((10#$KAFKA_BROKERS))
    ((KAFKA_BROKERS >= 1 && KAFKA_BROKERS <= 32)) || die "KAFKA_BROKERS must be 1..32, got $KAFKA_BROKERS"
    [[ -n $KAFKA_CONTROLLER_PORT ]] || KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + KAFKA_BROKERS))
    for name in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_NUM_PARTITIONS KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT; do
        value=${!name}
        [[ $value =~ ^[0-9]+$ ]] || die "$name must be a number, got '$value'"
    done
    KAFKA_SECURITY=${KAFKA_SECURITY,,}
    case $KAFKA_SECURITY in
    plaintext | sasl_ssl | ssl) ;;
    *) die "KAFKA_SECURITY must be plaintext, sasl_ssl or ssl, got '$KAFKA_SECURITY'" ;;
    esac
    [[ $KAFKA_AUTO_CREATE_TOPICS == true || $KAFKA_AUTO_CREATE_TOPICS == false ]] ||
        die "KAFKA_AUTO_CREATE_TOPICS must be true or false"
    [[ -z $KAFKA_PROXIED_PORT && -z $KAFKA_PROXY_PORT ]] ||
        [[ $KAFKA_PROXIED_PORT =~ ^[0-9]+$ && $KAFKA_PROXY_PORT =~ ^[0-9]+$ ]] ||
        die "KAFKA_PROXIED_PORT and KAFKA_PROXY_PORT must both be port numbers"
    check_ports "$KAFKA_BROKERS" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_PROXIED_PORT"
    if [[ -n $KAFKA_PROXY_PORT ]]; then
        ((KAFKA_PROXY_PORT > 0 && KAFKA_PROXY_PORT + KAFKA_BROKERS - 1 < 65536)) ||
            die "KAFKA_PROXY_PORT out of range: $KAFKA_PROXY_PORT"
    fi
    use_requested
}

# ------------------------------------------------------------- settings ----

# Act on the cluster the environment asks for.
use_requested() {
    NODES=$KAFKA_BROKERS SECURITY=$KAFKA_SECURITY PORT=$KAFKA_PORT CPORT=$KAFKA_CONTROLLER_PORT
    PXD=$KAFKA_PROXIED_PORT PXY=$KAFKA_PROXY_PORT ADMIN_PW="" CLIENT_PW=""
    layout
}

# One line naming the settings that shape a cluster (what `start` compares).
settings() {
    printf 'brokers=%s security=%s port=%s controller_port=%s proxied_port=%s proxy_port=%s' \
        "$NODES" "$SECURITY" "$PORT" "$CPORT" "$PXD" "$PXY"
}

# Act on the cluster recorded in the data dir by the last start. A data dir
# of the single-broker script before clusters existed counts as one
# plaintext node on the ports of the environment. Returns 1 (and keeps the
# requested settings) if there is neither.
load_state() {
    local key value
    RECORDED=""
    if [[ -f $STATE_FILE ]]; then
        while IFS='=' read -r key value; do
            case $key in
            brokers) NODES=$value ;;
            security) SECURITY=$value ;;
            port) PORT=$value ;;
            controller_port) CPORT=$value ;;
            proxied_port) PXD=$value ;;
            proxy_port) PXY=$value ;;
            admin_password) ADMIN_PW=$value ;;
            client_password) CLIENT_PW=$value ;;
            esac
        done <"$STATE_FILE"
        for value in "$NODES" "$PORT" "$CPORT"; do
            [[ $value =~ ^[0-9]+$ ]] || die "$STATE_FILE is damaged; run start again"
        done
        [[ -z $PXD || $PXD =~ ^[0-9]+$ && $PXY =~ ^[0-9]+$ ]] || die "$STATE_FILE is damaged; run start again"
        RECORDED=$(settings)
    elif [[ -f $KAFKA_DATA_DIR/server.properties ]]; then
        NODES=1 SECURITY=plaintext PORT=$KAFKA_PORT CPORT=${CONTROLLER_PORT_GIVEN:-$((KAFKA_PORT + 1))}
        PXD=$KAFKA_PROXIED_PORT PXY=$KAFKA_PROXY_PORT
    else
        return 1
    fi
    layout
}

write_state() {
    (
        umask 077
        cat >"$STATE_FILE" <<EOF
brokers=$NODES
security=$SECURITY
port=$PORT
controller_port=$CPORT
proxied_port=$PXD
proxy_port=$PXY
admin_password=$ADMIN_PW
client_password=$CLIENT_PW
EOF
    )
}

# Fill the per-node arrays and BOOTSTRAP from NODES, PORT, CPORT, PXD, PXY.
layout() {
    local i
    NODE_DIR=() NODE_PORT=() NODE_CTRL=() NODE_PXD=() NODE_PXY=()
    BOOTSTRAP=""
    for ((i = 1; i <= NODES; i++)); do
        if ((NODES == 1)); then
            NODE_DIR[i]=$KAFKA_DATA_DIR
        else
            NODE_DIR[i]=$KAFKA_DATA_DIR/node-$i
        fi
        NODE_PORT[i]=$((PORT + i - 1))
        NODE_CTRL[i]=$((CPORT + i - 1))
        if [[ -n $PXD ]]; then
            NODE_PXD[i]=$((PXD + i - 1))
            NODE_PXY[i]=$((PXY + i - 1))
        fi
        BOOTSTRAP+="${BOOTSTRAP:+,}$HOST:${NODE_PORT[i]}"
    done
}

# The node numbers a command acts on: $1, or all when $1 is empty.
TARGETS=()
pick_nodes() {
    local i
    TARGETS=()
    if [[ -z ${1:-} ]]; then
        for ((i = 1; i <= NODES; i++)); do TARGETS+=("$i"); done
        return 0
    fi
    if ! [[ $1 =~ ^[0-9]+$ ]] || ((10#$1 < 1 || 10#$1 > NODES)); then
        die "no node '$1': the cluster in $KAFKA_DATA_DIR has nodes 1..$NODES"
    fi
    TARGETS=("$((10#$1))")
}

# The security protocol of the client listeners, as Kafka names it.
protocol() {
    case $SECURITY in
    sasl_ssl) printf 'SASL_SSL' ;;
    ssl) printf 'SSL' ;;
    *) printf 'PLAINTEXT' ;;
    esac
}

# ---------------------------------------------------------------- install --

# Which Kafka to run: an install under KAFKA_HOME, or the Maven-fetched jars.
use_kafka_home() {
    [[ -n $KAFKA_HOME && -x $KAFKA_HOME/bin/kafka-server-start.sh ]]
}

warn_bad_kafka_home() {
    if [[ -n $KAFKA_HOME ]] && ! use_kafka_home; then
        warn "KAFKA_HOME=$KAFKA_HOME has no bin/kafka-server-start.sh; using Maven jars instead"
    fi
}

# Version of the Kafka that will run (from the jar names under KAFKA_HOME).
running_version() {
    if use_kafka_home; then
        local jar
        for jar in "$KAFKA_HOME"/libs/kafka-clients-*.jar; do
            [[ -e $jar ]] || continue
            jar=${jar##*/kafka-clients-}
            printf '%s' "${jar%.jar}"
            return 0
        done
        printf 'unknown'
    else
        printf '%s' "$KAFKA_VERSION"
    fi
}

# True if version $1 is at least major.minor $2.$3 (unknown counts as new).
version_at_least() {
    local major minor
    [[ $1 =~ ^([0-9]+)\.([0-9]+) ]] || return 0
    major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
    ((major > $2 || (major == $2 && minor >= $3)))
}

libs_complete() {
    [[ -f $LIBS_MARKER && $(cat "$LIBS_MARKER") == "$(libs_stamp)" ]]
}

# Identifies what the cache was filled from: a pom edit refreshes it.
libs_stamp() {
    printf 'kafka=%s pom=%s' "$KAFKA_VERSION" "$(cksum <"$POM" | cut -d' ' -f1)"
}

fetch_libs() {
    if libs_complete; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn (Maven) is required to fetch Kafka; or set KAFKA_HOME"
    command -v java >/dev/null || die "java is required"
    mkdir -p "$KAFKA_CACHE_DIR"
    local tmp="$KAFKA_CACHE_DIR/libs.tmp.$$" mvn_log="$KAFKA_CACHE_DIR/mvn.log"
    rm -rf "$tmp"
    warn "fetching Kafka $KAFKA_VERSION jars with Maven into $LIBS_DIR"
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -Dkafka.version="$KAFKA_VERSION" >"$mvn_log" 2>&1; then
        # -q leaves only errors; drop colour codes and blank lines.
        sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' "$mvn_log" >&2
        rm -rf "$tmp"
        die "Maven could not fetch Kafka $KAFKA_VERSION (log: $mvn_log)"
    fi
    [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar && -f $tmp/kafka-tools-$KAFKA_VERSION.jar ]] ||
        die "Maven finished but the Kafka jars are missing in $tmp"
    libs_stamp >"$tmp/.complete"
    rm -rf "$LIBS_DIR"
    # Another fetch may have won the race; its result is equally good.
    if ! mv -T "$tmp" "$LIBS_DIR" 2>/dev/null; then
        rm -rf "$tmp"
        libs_complete || die "could not install jars into $LIBS_DIR"
    fi
    rm -f "$mvn_log"
}

# Java (or the KAFKA_HOME install) and the jars, ready to run.
prepare_runtime() {
    if ! use_kafka_home; then
        command -v java >/dev/null || die "java (17+) is required"
        fetch_libs
    fi
}

# ------------------------------------------------------------- processes --

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Pid recorded for node $1.
read_pid() {
    local pid file=${NODE_DIR[$1]}/kafka.pid
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    printf '%s' "$pid"
}

# True if $1 is a live broker started by this script for node $2.
is_our_broker() {
    local args
    kill -0 "$1" 2>/dev/null || return 1
    if [[ -r /proc/$1/cmdline ]]; then
        args=$(tr '\0' ' ' <"/proc/$1/cmdline") || return 1
    else
        args=$(ps -ww -o args= -p "$1" 2>/dev/null) || return 1
    fi
    [[ $args == *kafka.Kafka* && $args == *"${NODE_DIR[$2]}/server.properties"* ]]
}

# Node $1's broker pid, if it is alive.
our_pid() {
    local pid
    pid=$(read_pid "$1") || return 1
    is_our_broker "$pid" "$1" || return 1
    printf '%s' "$pid"
}

# Run a Kafka tool: a class from the Maven jars, or a bin script of
# KAFKA_HOME. Usage: run_tool CLASS SCRIPT ARGS...
run_tool() {
    local class=$1 script=$2
    shift 2
    local -a limit=()
    # A hung tool must not hang start/status.
    command -v timeout >/dev/null && limit=(timeout 60)
    if use_kafka_home; then
        "${limit[@]}" env KAFKA_HEAP_OPTS="-Xms32m -Xmx256m" \
            KAFKA_JVM_PERFORMANCE_OPTS="-XX:+UseSerialGC -XX:TieredStopAtLevel=1" \
            KAFKA_OPTS="" LOG_DIR="$KAFKA_DATA_DIR/app-logs" \
            "$KAFKA_HOME/bin/$script" "$@"
    else
        "${limit[@]}" java "${TOOL_JVM_OPTS[@]}" \
            -Dlog4j2.configurationFile="$KAFKA_DATA_DIR/tools-log4j2.properties" \
            -cp "$LIBS_DIR/*" "$class" "$@"
    fi
}

tools_available() {
    use_kafka_home || { libs_complete && [[ -f $KAFKA_DATA_DIR/tools-log4j2.properties ]]; }
}

# Output of the last failed probe, shown when start gives up.
PROBE_OUTPUT=""

# True if the single node answers a real request (a topic listing).
serving() {
    port_open "${NODE_PORT[1]}" || return 1
    if ! PROBE_OUTPUT=$(run_tool org.apache.kafka.tools.TopicCommand kafka-topics.sh \
        --bootstrap-server "$BOOTSTRAP" --command-config "$PROBE_PROPS" --list 2>&1); then
        return 1
    fi
    PROBE_OUTPUT=""
}

# Ids of the brokers that the cluster lists as up (registered, not fenced)
# and that answered an ApiVersions request, one a line; bootstrapping from
# the addresses in $1.
answering_brokers() {
    local out
    if ! out=$(run_tool org.apache.kafka.tools.BrokerApiVersionsCommand kafka-broker-api-versions.sh \
        --bootstrap-server "$1" --command-config "$PROBE_PROPS" 2>&1); then
        PROBE_OUTPUT=$out
        return 1
    fi
    PROBE_OUTPUT=$out
    # A broker that answers: "127.0.0.1:9092 (id: 1 rack: null isFenced: false) -> (".
    sed -n 's/^[^ ]* (id: \([0-9][0-9]*\) .*) -> ($/\1/p' <<<"$out"
}

# True if nodes "$@" serve: for one node the topic listing; for a cluster,
# each of them, asked directly, lists itself as up and answers.
nodes_serving() {
    if ((NODES == 1)); then
        serving
        return
    fi
    local i ids bootstrap=""
    for i; do
        port_open "${NODE_PORT[i]}" || return 1
        bootstrap+="${bootstrap:+,}$HOST:${NODE_PORT[i]}"
    done
    ids=$(answering_brokers "$bootstrap") || return 1
    for i; do
        grep -qx "$i" <<<"$ids" || return 1
    done
}

show_log_tail() {
    local log=${NODE_DIR[$1]}/broker.log
    if [[ -s $log ]]; then
        warn "last lines of $log:"
        tail -n 40 "$log" | sed 's/^/    /' >&2
    fi
}

# "node N " for a cluster, "" for a single node (message prefixes).
node_label() {
    ((NODES == 1)) || [[ -z ${1:-} ]] || printf 'node %s ' "$1"
}

# Stop our brokers of nodes "$@" together (SIGTERM, then SIGKILL after
# KAFKA_STOP_TIMEOUT); returns after they are gone. Prints "NODE PID" for
# each one stopped; returns 1 if none ran.
stop_nodes() {
    local i pid waited=0 alive
    local -a nodes=() pids=()
    for i; do
        if pid=$(our_pid "$i"); then
            kill -TERM "$pid" 2>/dev/null || true
            nodes+=("$i") pids+=("$pid")
        else
            rm -f "${NODE_DIR[i]}/kafka.pid"
        fi
    done
    ((${#pids[@]} > 0)) || return 1
    while :; do
        alive=()
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive+=("$pid")
        done
        ((${#alive[@]} > 0)) || break
        if ((waited >= KAFKA_STOP_TIMEOUT * 10)); then
            warn "broker (pid ${alive[*]}) ignored SIGTERM for ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            for pid in "${alive[@]}"; do
                while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
            done
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    for i in "${!nodes[@]}"; do
        rm -f "${NODE_DIR[${nodes[i]}]}/kafka.pid"
        printf '%s %s\n' "${nodes[i]}" "${pids[i]}"
    done
}

# ------------------------------------------------------------- data dir ----

# Empty the data dir, refusing to delete anything this script did not create.
reset_data_dir() {
    local dir=$KAFKA_DATA_DIR i
    [[ -n $dir && $dir != / && $dir != "$HOME" ]] || die "refusing to use KAFKA_DATA_DIR=$dir"
    if [[ -e $dir ]]; then
        [[ -d $dir ]] || die "KAFKA_DATA_DIR=$dir is not a directory"
        if [[ ! -e $dir/$DATA_MARKER && -n $(ls -A "$dir") ]]; then
            die "KAFKA_DATA_DIR=$dir is not empty and was not created by this script; refusing to wipe it"
        fi
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    : >"$dir/$DATA_MARKER"
    for ((i = 1; i <= NODES; i++)); do
        mkdir -p "${NODE_DIR[i]}"
    done
}

# Absolute path of the data dir (for paths handed to brokers and clients).
abs_data_dir() {
    (cd "$KAFKA_DATA_DIR" && pwd)
}

# A random password of 24 letters and digits.
new_password() {
    local pw
    pw=$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    printf '%s' "${pw:0:24}"
}

# Dies unless something can make the certificates.
check_tls_tools() {
    [[ $SECURITY == plaintext ]] && return 0
    command -v openssl >/dev/null || command -v keytool >/dev/null ||
        die "KAFKA_SECURITY=$SECURITY needs openssl or keytool to make certificates"
}

# A CA, one certificate for all brokers (127.0.0.1 and localhost, server and
# client use) and a client certificate, into TLS_DIR as PEM: ca.pem, ca.key,
# broker.pem (broker key, certificate and CA: the brokers' PEM key store),
# client.crt, client.key. Keys are unencrypted, files mode 600.
make_tls() {
    mkdir -p "$TLS_DIR"
    chmod 700 "$TLS_DIR"
    if command -v openssl >/dev/null; then
        (umask 077 && cd "$TLS_DIR" && tls_with_openssl) || die "could not make certificates with openssl"
    else
        (umask 077 && cd "$TLS_DIR" && tls_with_keytool) || die "could not make certificates with keytool"
    fi
}

tls_with_openssl() {
    local out
    cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = ocpp-gw throw-away Kafka CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[broker_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
    out=$(
        set -e
        exec 2>&1
        for name in ca broker client; do
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key"
        done
        openssl req -x509 -new -config openssl.cnf -extensions ca_ext -key ca.key -sha256 -days 3650 \
            -subj "/CN=ocpp-gw throw-away Kafka CA" -out ca.pem
        openssl req -new -config openssl.cnf -key broker.key -subj "/CN=localhost" -out broker.csr
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
            -days 3650 -sha256 -extfile openssl.cnf -extensions broker_ext -out broker.crt
        openssl req -new -config openssl.cnf -key client.key -subj "/CN=$CLIENT_USER" -out client.csr
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
            -days 3650 -sha256 -extfile openssl.cnf -extensions client_ext -out client.crt
        cat broker.key broker.crt ca.pem >broker.pem
        rm -f broker.csr client.csr broker.key broker.crt openssl.cnf
    ) || {
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        return 1
    }
}

# The same with keytool (PKCS12 stores), plus a few lines of Java that write
# a private key from a PKCS12 store as PEM (keytool cannot).
tls_with_keytool() {
    local out pw
    pw=$(new_password)
    cat >PemKey.java <<'EOF'
import java.io.FileInputStream;
import java.security.Key;
import java.security.KeyStore;
import java.util.Base64;

// Prints the private key of entry args[1] of PKCS12 store args[0] as PEM;
// the store password is in environment variable STORE_PASSWORD.
public class PemKey {
    public static void main(String[] args) throws Exception {
        char[] password = System.getenv("STORE_PASSWORD").toCharArray();
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) {
            store.load(in, password);
        }
        Key key = store.getKey(args[1], password);
        Base64.Encoder encoder = Base64.getMimeEncoder(64, new byte[] {'\n'});
        System.out.println("-----BEGIN PRIVATE KEY-----");
        System.out.println(encoder.encodeToString(key.getEncoded()));
        System.out.println("-----END PRIVATE KEY-----");
    }
}
EOF
    out=$(
        set -e
        exec 2>&1
        kt() { keytool -noprompt -storetype PKCS12 -storepass "$pw" "$@"; }
        kt -genkeypair -keystore ca.p12 -alias ca -keyalg EC -groupname secp256r1 -validity 3650 \
            -dname "CN=ocpp-gw throw-away Kafka CA" -ext bc:c -ext ku:c=keyCertSign,cRLSign
        kt -exportcert -rfc -keystore ca.p12 -alias ca -file ca.pem
        kt -genkeypair -keystore broker.p12 -alias broker -keyalg EC -groupname secp256r1 -dname "CN=localhost"
        kt -certreq -keystore broker.p12 -alias broker -file broker.csr
        kt -gencert -keystore ca.p12 -alias ca -infile broker.csr -outfile broker.crt -rfc -validity 3650 \
            -ext bc:c=ca:false -ext ku:c=digitalSignature -ext eku=serverAuth,clientAuth \
            -ext san=ip:127.0.0.1,dns:localhost
        kt -genkeypair -keystore client.p12 -alias client -keyalg EC -groupname secp256r1 -dname "CN=$CLIENT_USER"
        kt -certreq -keystore client.p12 -alias client -file client.csr
        kt -gencert -keystore ca.p12 -alias ca -infile client.csr -outfile client.crt -rfc -validity 3650 \
            -ext bc:c=ca:false -ext ku:c=digitalSignature -ext eku=clientAuth
        for name in ca broker client; do
            STORE_PASSWORD=$pw java -Xms16m -Xmx64m -XX:TieredStopAtLevel=1 PemKey.java "$name.p12" "$name" >"$name.key"
        done
        cat broker.key broker.crt ca.pem >broker.pem
        rm -f ./*.p12 ./*.csr broker.key broker.crt PemKey.java
    ) || {
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        return 1
    }
}

# Admin-client settings for the probes and tools: fail fast, retry here;
# authenticate as the admin user (sasl_ssl) or with the brokers' certificate
# (ssl).
write_probe_props() {
    local tls=$1
    {
        cat <<'EOF'
request.timeout.ms=5000
default.api.timeout.ms=10000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=5000
EOF
        case $SECURITY in
        sasl_ssl)
            cat <<EOF
security.protocol=SASL_SSL
sasl.mechanism=$SCRAM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$ADMIN_USER" password="$ADMIN_PW";
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
EOF
            ;;
        ssl)
            cat <<EOF
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker.pem
EOF
            ;;
        esac
    } >"$PROBE_PROPS"
}

# server.properties of node $1.
write_node_config() {
    local i=$1 dir=${NODE_DIR[$1]} tls=$2 voters=$3
    local name protocol quorum listeners advertised protocols rf=1 min_isr=1
    protocol=$(protocol)
    name=$protocol
    listeners="$name://$HOST:${NODE_PORT[i]},CONTROLLER://$HOST:${NODE_CTRL[i]}"
    advertised="$name://$HOST:${NODE_PORT[i]}"
    protocols="CONTROLLER:PLAINTEXT,$name:$protocol"
    if [[ -n $PXD ]]; then
        listeners+=",PROXIED://$HOST:${NODE_PXD[i]}"
        advertised+=",PROXIED://$HOST:${NODE_PXY[i]}"
        protocols+=",PROXIED:$protocol"
    fi
    if ((NODES > 1)); then
        quorum="controller.quorum.voters=$voters"
    elif use_kafka_home && ! version_at_least "$(running_version)" 3 9; then
        # Before 3.9 there is no dynamic quorum: use a static voter set.
        quorum="controller.quorum.voters=1@$HOST:${NODE_CTRL[i]}"
    else
        quorum="controller.quorum.bootstrap.servers=$HOST:${NODE_CTRL[i]}"
    fi
    if ((NODES >= 3)); then
        rf=3 min_isr=2
    fi
    {
        cat <<EOF
# Written by scripts/kafka/kafka.sh; regenerated on every start.
process.roles=broker,controller
node.id=$i
$quorum
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=$name
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$dir/kraft-logs
num.partitions=$KAFKA_NUM_PARTITIONS
default.replication.factor=$rf
min.insync.replicas=$min_isr
auto.create.topics.enable=$KAFKA_AUTO_CREATE_TOPICS
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
EOF
        if [[ $SECURITY != plaintext ]]; then
            cat <<EOF
ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
EOF
        fi
        case $SECURITY in
        sasl_ssl)
            cat <<EOF
sasl.enabled.mechanisms=$SCRAM
sasl.mechanism.inter.broker.protocol=$SCRAM
listener.name.sasl_ssl.${SCRAM,,}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$ADMIN_USER" password="$ADMIN_PW";
EOF
            [[ -z $PXD ]] ||
                printf 'listener.name.proxied.%s.sasl.jaas.config=%s\n' "${SCRAM,,}" \
                    'org.apache.kafka.common.security.scram.ScramLoginModule required;'
            ;;
        ssl)
            printf 'ssl.client.auth=required\n'
            ;;
        esac
    } >"$dir/server.properties"
}

write_configs() {
    local dir=$KAFKA_DATA_DIR i tls="" voters=""
    [[ $SECURITY == plaintext ]] || tls="$(abs_data_dir)/tls"
    for ((i = 1; i <= NODES; i++)); do
        voters+="${voters:+,}$i@$HOST:${NODE_CTRL[i]}"
    done
    (
        umask 077
        for ((i = 1; i <= NODES; i++)); do
            write_node_config "$i" "$tls" "$voters"
        done
        write_probe_props "$tls"
    )

    # log4j2 for the Maven-jar broker: everything goes to stdout (broker.log).
    cat >"$dir/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.request.additivity = false
logger.request.appenderRef.out.ref = OUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
EOF

    # log4j2 for the short-lived tools: warnings only, on stderr.
    cat >"$dir/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
}

# A random KRaft cluster id: 16 random bytes, URL-safe base64, no padding.
# Like Kafka's own generator, avoid ids that start with '-'.
new_cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ ${#id} == 22 && $id != -* ]] && break
    done
    printf '%s' "$id"
}

# Format every node's storage (in parallel), with the SCRAM users.
format_storage() {
    local cid i failed=0
    local -a args scram=() pids=()
    cid=$(new_cluster_id)
    args=(format -t "$cid")
    if ((NODES == 1)) && { ! use_kafka_home || version_at_least "$(running_version)" 3 9; }; then
        args+=(--standalone)
    fi
    if [[ $SECURITY == sasl_ssl ]]; then
        scram=(--add-scram "$SCRAM=[name=$ADMIN_USER,password=$ADMIN_PW]"
            --add-scram "$SCRAM=[name=$CLIENT_USER,password=$CLIENT_PW]")
    fi
    for ((i = 1; i <= NODES; i++)); do
        run_tool kafka.tools.StorageTool kafka-storage.sh "${args[@]}" -c "${NODE_DIR[i]}/server.properties" \
            "${scram[@]}" >"${NODE_DIR[i]}/format.log" 2>&1 &
        pids[i]=$!
    done
    for ((i = 1; i <= NODES; i++)); do
        if wait "${pids[i]}"; then
            rm -f "${NODE_DIR[i]}/format.log"
        else
            failed=1
            sed 's/^/    /' "${NODE_DIR[i]}/format.log" >&2
        fi
    done
    ((failed == 0)) || die "formatting KRaft storage in $KAFKA_DATA_DIR failed"
}

# Start node $1's broker in the background (pid in its kafka.pid).
launch_node() {
    local dir=${NODE_DIR[$1]}
    local -a cmd launcher=()
    rm -f "$dir/kafka.pid"
    if use_kafka_home; then
        export KAFKA_HEAP_OPTS KAFKA_OPTS
        export LOG_DIR="$dir/app-logs"
        cmd=("$KAFKA_HOME/bin/kafka-server-start.sh" "$dir/server.properties")
    else
        # shellcheck disable=SC2206 # heap/extra options are word lists
        cmd=(java -server $KAFKA_HEAP_OPTS
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
            -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
            -Dlog4j2.configurationFile="$KAFKA_DATA_DIR/log4j2.properties"
            $KAFKA_OPTS
            -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties")
    fi
    # Own session and no inherited lock fd, so the broker outlives this
    # script and its terminal; the inner shell writes its pid, then becomes
    # the JVM.
    command -v setsid >/dev/null && launcher=(setsid)
    # shellcheck disable=SC2016 # $$ is for the inner shell
    "${launcher[@]}" nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/kafka.pid" "${cmd[@]}" \
        </dev/null >"$dir/broker.log" 2>&1 9>&- &
    # Wait for the pid file (written by the child right away).
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $dir/kafka.pid ]] && return 0
        sleep 0.05
    done
    die "$(node_label "$1")broker did not start (no pid file)"
}

# Dies unless the ports of nodes "$@" are free.
check_ports_free() {
    local i port
    for i; do
        for port in "${NODE_PORT[i]}" "${NODE_CTRL[i]}" "${NODE_PXD[i]:-}"; do
            [[ -n $port ]] || continue
            if port_open "$port"; then
                die "$HOST:$port is already in use by another process (not a broker started by this script)"
            fi
        done
    done
}

# Wait until nodes "$@" serve. Dies (after stopping the nodes in LAUNCHED)
# if one of them exits or after KAFKA_START_TIMEOUT.
LAUNCHED=()
wait_serving() {
    local i pid deadline ports_up
    deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while :; do
        ports_up=1
        for i; do
            if ! pid=$(read_pid "$i") || ! kill -0 "$pid" 2>/dev/null; then
                rm -f "${NODE_DIR[i]}/kafka.pid"
                show_log_tail "$i"
                ((${#LAUNCHED[@]} == 0)) || stop_nodes "${LAUNCHED[@]}" >/dev/null || true
                die "$(node_label "$i")broker exited during start-up"
            fi
            port_open "${NODE_PORT[i]}" || ports_up=0
        done
        # Probe (a JVM) only once every client port accepts connections.
        if ((ports_up)) && nodes_serving "$@"; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            for i; do show_log_tail "$i"; done
            if [[ -n $PROBE_OUTPUT ]]; then
                warn "last probe output:"
                printf '%s\n' "$PROBE_OUTPUT" | tail -n 20 | sed 's/^/    /' >&2
            fi
            ((${#LAUNCHED[@]} == 0)) || stop_nodes "${LAUNCHED[@]}" >/dev/null || true
            if (($# > 1)); then
                die "brokers not ready after ${KAFKA_START_TIMEOUT}s (stopped them)"
            fi
            die "$(node_label "${1:-}")broker not ready after ${KAFKA_START_TIMEOUT}s (stopped it)"
        fi
        sleep 0.5
    done
}

# $KAFKA_DATA_DIR/client.env: the gateway's Kafka settings, KEY=value.
write_client_env() {
    local abs line tmp="$CLIENT_ENV.tmp.$$"
    local -a lines=("OCPPGW_KAFKA__SERVERS=$BOOTSTRAP")
    abs=$(abs_data_dir)
    case $SECURITY in
    sasl_ssl)
        lines+=("OCPPGW_KAFKA__SECURITY_PROTOCOL=SASL_SSL"
            "OCPPGW_KAFKA__SASL_MECHANISM=$SCRAM"
            "OCPPGW_KAFKA__SASL_USERNAME=$CLIENT_USER"
            "OCPPGW_KAFKA__SASL_PASSWORD=$CLIENT_PW"
            "OCPPGW_KAFKA__SSL_CAFILE=$abs/tls/ca.pem")
        ;;
    ssl)
        lines+=("OCPPGW_KAFKA__SECURITY_PROTOCOL=SSL"
            "OCPPGW_KAFKA__SSL_CAFILE=$abs/tls/ca.pem"
            "OCPPGW_KAFKA__SSL_CERTFILE=$abs/tls/client.crt"
            "OCPPGW_KAFKA__SSL_KEYFILE=$abs/tls/client.key")
        ;;
    esac
    for line in "${lines[@]}"; do
        [[ $line != *[[:space:]]* ]] || warn "client.env: '$line' has white space; quote it before sourcing"
    done
    (umask 077 && printf '%s\n' "${lines[@]}" >"$tmp")
    chmod 600 "$tmp"
    mv -f "$tmp" "$CLIENT_ENV"
}

# The pids of nodes "$@", space-separated ("?" for a missing one).
pids_of() {
    local i pid
    local -a pids=()
    for i; do
        pid=$(read_pid "$i") || pid="?"
        pids+=("$pid")
    done
    printf '%s' "${pids[*]}"
}

# "Kafka X.Y.Z, 3 brokers, SASL_SSL, pids A B C" for nodes "$@".
describe() {
    local text
    text="Kafka $(running_version)"
    ((NODES == 1)) || text+=", $NODES brokers"
    [[ $SECURITY == plaintext ]] || text+=", $(protocol)"
    if (($# == 1)); then
        text+=", pid $(pids_of "$@")"
    else
        text+=", pids $(pids_of "$@")"
    fi
    printf '%s' "$text"
}

# ------------------------------------------------------------- commands ----

cmd_fetch() {
    if use_kafka_home; then
        say "using KAFKA_HOME=$KAFKA_HOME (Kafka $(running_version)); nothing to fetch"
        return 0
    fi
    warn_bad_kafka_home
    fetch_libs
    say "Kafka $KAFKA_VERSION jars ready in $LIBS_DIR"
}

cmd_start() {
    local want i pid
    local -a alive=()
    warn_bad_kafka_home
    want=$(settings)

    # What runs from this data dir: keep it if it is what was asked for and
    # serves, else stop it.
    if load_state; then
        for ((i = 1; i <= NODES; i++)); do
            our_pid "$i" >/dev/null && alive+=("$i")
        done
        if ((${#alive[@]} > 0)); then
            if [[ $RECORDED == "$want" || (-z $RECORDED && $want == "$(settings)") ]]; then
                if ((${#alive[@]} == NODES)) && tools_available && nodes_serving "${alive[@]}"; then
                    say "already running on $BOOTSTRAP ($(describe "${alive[@]}"))"
                    write_client_env
                    say "client settings in $CLIENT_ENV"
                    return 0
                fi
                if ((NODES == 1)); then
                    warn "broker (pid $(read_pid 1)) is running but not serving; restarting it"
                else
                    warn "the cluster in $KAFKA_DATA_DIR is not fully up; restarting it"
                fi
            else
                warn "replacing the Kafka running from $KAFKA_DATA_DIR (${RECORDED:-one plaintext node})"
            fi
            stop_nodes "${alive[@]}" >/dev/null || true
        fi
    fi
    use_requested

    pick_nodes ""
    check_ports_free "${TARGETS[@]}"
    prepare_runtime
    check_tls_tools
    if [[ $SECURITY == sasl_ssl ]] && use_kafka_home && ! version_at_least "$(running_version)" 3 5; then
        die "KAFKA_SECURITY=sasl_ssl needs Kafka 3.5+ (SCRAM users at format time)"
    fi

    reset_data_dir
    if [[ $SECURITY == sasl_ssl ]]; then
        ADMIN_PW=$(new_password) CLIENT_PW=$(new_password)
    fi
    [[ $SECURITY == plaintext ]] || make_tls
    write_state
    write_configs
    format_storage
    for i in "${TARGETS[@]}"; do
        launch_node "$i"
    done
    LAUNCHED=("${TARGETS[@]}")
    wait_serving "${TARGETS[@]}"
    write_client_env
    say "ready on $BOOTSTRAP ($(describe "${TARGETS[@]}"))"
    say "client settings in $CLIENT_ENV"
}

cmd_resume() {
    local node=${1:-} i pid where
    local -a alive=() down=()
    warn_bad_kafka_home
    load_state || true
    pick_nodes "$node"
    [[ -z $node ]] || node=${TARGETS[0]}
    [[ -e $KAFKA_DATA_DIR/$DATA_MARKER ]] || die "nothing to resume in $KAFKA_DATA_DIR"
    for i in "${TARGETS[@]}"; do
        [[ -f ${NODE_DIR[i]}/server.properties ]] || die "nothing to resume in ${NODE_DIR[i]}"
    done
    if [[ -n $node ]]; then
        where="$HOST:${NODE_PORT[node]}"
    else
        where=$BOOTSTRAP
    fi

    for i in "${TARGETS[@]}"; do
        if our_pid "$i" >/dev/null; then
            alive+=("$i")
        else
            down+=("$i")
        fi
    done
    if ((${#down[@]} == 0)); then
        if tools_available && nodes_serving "${TARGETS[@]}"; then
            say "$(node_label "$node")already running on $where ($(describe "${TARGETS[@]}"))"
            write_client_env
            return 0
        fi
        warn "$(node_label "$node")broker (pid $(pids_of "${TARGETS[@]}")) is running but not serving; restarting it"
        stop_nodes "${TARGETS[@]}" >/dev/null || true
        down=("${TARGETS[@]}")
    fi

    check_ports_free "${down[@]}"
    prepare_runtime
    for i in "${down[@]}"; do
        launch_node "$i"
    done
    LAUNCHED=("${down[@]}")
    wait_serving "${TARGETS[@]}"
    write_client_env
    say "$(node_label "$node")ready on $where ($(describe "${TARGETS[@]}"))"
}

cmd_kill() {
    local i pid any=0
    load_state || true
    pick_nodes "${1:-}"
    for i in "${TARGETS[@]}"; do
        if pid=$(our_pid "$i"); then
            kill -KILL "$pid"
            while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
            rm -f "${NODE_DIR[i]}/kafka.pid"
            say "$(node_label "$i")killed (pid $pid)"
            any=1
        elif ((NODES > 1)); then
            say "node $i not running"
        fi
    done
    ((any || NODES > 1)) || say "not running"
}

cmd_stop() {
    local out i pid
    load_state || true
    pick_nodes "${1:-}"
    if out=$(stop_nodes "${TARGETS[@]}"); then
        while read -r i pid; do
            say "$(node_label "$i")stopped (pid $pid)"
        done <<<"$out"
    else
        say "not running"
    fi
}

cmd_status() {
    local node=${1:-}
    load_state || true
    pick_nodes "$node"
    if ((NODES == 1)); then
        status_single
    else
        status_cluster "$node"
    fi
}

status_single() {
    local pid
    if pid=$(our_pid 1); then
        if tools_available && serving; then
            say "running on $BOOTSTRAP ($(describe 1))"
            return 0
        fi
        say "pid $pid is alive but not serving on $BOOTSTRAP"
        return 1
    fi
    if tools_available && serving; then
        say "a broker not started by this script serves on $BOOTSTRAP"
        return 0
    fi
    if ! tools_available && port_open "$PORT"; then
        say "$BOOTSTRAP accepts connections (not started by this script; not probed)"
        return 0
    fi
    say "not running on $BOOTSTRAP"
    return 3
}

# Status of the nodes in TARGETS; $1: the node asked for ("" for all).
status_cluster() {
    local node=${1:-} i pid ids="" bootstrap="" up=0 stuck=0 where report=""
    for ((i = 1; i <= NODES; i++)); do
        port_open "${NODE_PORT[i]}" && bootstrap+="${bootstrap:+,}$HOST:${NODE_PORT[i]}"
    done
    if [[ -n $bootstrap ]] && tools_available; then
        ids=$(answering_brokers "$bootstrap") || ids=""
    fi
    for i in "${TARGETS[@]}"; do
        where="$HOST:${NODE_PORT[i]}"
        pid=$(our_pid "$i") || pid=""
        if grep -qx "$i" <<<"$ids"; then
            up=$((up + 1))
            if [[ -n $pid ]]; then
                report+="node $i: running on $where (pid $pid)"$'\n'
            else
                report+="node $i: serving on $where (not started by this script)"$'\n'
            fi
        elif [[ -n $pid ]]; then
            stuck=$((stuck + 1))
            report+="node $i: pid $pid is alive but not serving on $where"$'\n'
        elif ! tools_available && port_open "${NODE_PORT[i]}"; then
            up=$((up + 1))
            report+="node $i: $where accepts connections (not probed)"$'\n'
        else
            report+="node $i: not running on $where"$'\n'
        fi
    done
    if [[ -z $node ]]; then
        say "$up of $NODES nodes serving on $BOOTSTRAP (Kafka $(running_version), $(protocol))"
    fi
    printf '%s' "$report" | sed 's/^/kafka: /'
    if ((up == ${#TARGETS[@]})); then
        return 0
    elif ((up == 0 && stuck == 0)); then
        return 3
    fi
    return 1
}

# Serialise start/stop for one data dir (e.g. parallel test workers). The
# lock file sits beside the data dir, which `start` wipes.
take_lock() {
    command -v flock >/dev/null || return 0
    local lock="${KAFKA_DATA_DIR%/}.lock"
    mkdir -p "$(dirname "$lock")"
    exec 9>"$lock"
    flock -w $((KAFKA_START_TIMEOUT + KAFKA_STOP_TIMEOUT + 120)) 9 || die "timed out waiting for $lock"
}

main() {
    check_settings
    case ${1:-} in
    start)
        take_lock
        cmd_start
        ;;
    resume)
        take_lock
        cmd_resume "${2:-}"
        ;;
    stop)
        take_lock
        cmd_stop "${2:-}"
        ;;
    kill)
        take_lock
        cmd_kill "${2:-}"
        ;;
    status) cmd_status "${2:-}" ;;
    fetch) cmd_fetch ;;
    -h | --help | help)
        sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
        ;;
    *)
        warn "usage: $0 start|stop [N]|status [N]|fetch|kill [N]|resume [N]"
        exit 2
        ;;
    esac
}

main "$@"
