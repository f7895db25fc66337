#!/usr/bin/env bash
# Run a throw-away, single-node Apache Kafka broker (KRaft, one process acting
# as broker and controller) on 127.0.0.1 for development and tests -- no
# Docker and no tarball: the broker jars come from Maven Central through
# scripts/kafka/pom.xml, or from an existing install named by KAFKA_HOME.
#
# Usage: scripts/kafka/kafka.sh start|stop|status|fetch|kill|resume
#
#   start   Start a broker and wait until it serves requests. Every start
#           wipes and re-formats the data dir, so each run begins with no
#           topics and no committed offsets. If a broker started by this
#           script already serves on the port, says so and exits 0.
#           Prints "kafka: ready on 127.0.0.1:PORT (Kafka X.Y.Z, pid N)".
#   stop    Stop the broker started by `start` (SIGTERM, then SIGKILL after
#           KAFKA_STOP_TIMEOUT seconds). Exits 0 when nothing runs.
#   status  Exit 0 if a broker serves on 127.0.0.1:PORT, non-zero otherwise.
#   fetch   Only download the jars into the cache (pre-warms set-up/CI).
#   kill    SIGKILL the broker (a crash, for the fault suite).
#   resume  Start the broker again on its existing data dir (after stop or
#           kill): topics, records and committed offsets are kept.
#
# Environment (all optional):
#   KAFKA_VERSION          Kafka version fetched from Maven Central (4.3.1).
#   KAFKA_PORT             PLAINTEXT client port on 127.0.0.1 (9092).
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (KAFKA_PORT+1).
#   KAFKA_CACHE_DIR        Where the jars are cached; they go to its libs/
#                          sub-dir. Default:
#                          ${XDG_CACHE_HOME:-$HOME/.cache}/ocpp-gw/kafka-$KAFKA_VERSION
#   KAFKA_DATA_DIR         Config, logs, pid file and partition data; WIPED on
#                          every start. Default:
#                          ${XDG_CACHE_HOME:-$HOME/.cache}/ocpp-gw/kafka-data-$KAFKA_PORT
#   KAFKA_HOME             Use this Kafka install (must have
#                          bin/kafka-server-start.sh) instead of Maven jars.
#   KAFKA_HEAP_OPTS        Broker heap options ("-Xmx512m -Xms256m").
#   KAFKA_OPTS             Extra JVM options for the broker (none).
#   KAFKA_NUM_PARTITIONS   num.partitions of auto/default-created topics (8).
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable (false).
#   KAFKA_START_TIMEOUT    Seconds `start` waits for readiness (90).
#   KAFKA_STOP_TIMEOUT     Seconds `stop` waits before SIGKILL (30).
#   KAFKA_PROXIED_PORT     Also listen on this port, advertising
#   KAFKA_PROXY_PORT       127.0.0.1:KAFKA_PROXY_PORT, so that clients which
#                          bootstrap through a TCP proxy on that port keep
#                          using it (the fault suite stalls it). Both or none.
#
# Needs: bash, java 17+, and (unless KAFKA_HOME is used) mvn 3.6.3+.
# Files in the data dir: server.properties, broker.log (broker output),
# kafka.pid, kraft-logs/ (partition and metadata logs).

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/pom.xml"

KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-}  # default set in check_settings
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
BOOTSTRAP="$HOST:$KAFKA_PORT"
LIBS_DIR="$KAFKA_CACHE_DIR/libs"
LIBS_MARKER="$LIBS_DIR/.complete"
DATA_MARKER=".ocpp-gw-kafka-data"
PID_FILE="$KAFKA_DATA_DIR/kafka.pid"
SERVER_PROPS="$KAFKA_DATA_DIR/server.properties"
BROKER_LOG="$KAFKA_DATA_DIR/broker.log"
# Small, fast-starting JVMs for the short-lived tools (format, probe).
TOOL_JVM_OPTS=(-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

say() { printf 'kafka: %s\n' "$*"; }
warn() { printf 'kafka: %s\n' "$*" >&2; }
die() {
    warn "error: $*"
    exit 1
}

check_settings() {
    local name value
    [[ $KAFKA_PORT =~ ^[0-9]+$ ]] || die "KAFKA_PORT must be a number, got '$KAFKA_PORT'"
    [[ -n $KAFKA_CONTROLLER_PORT ]] || KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
    for name in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_NUM_PARTITIONS KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT; do
        value=${!name}
        [[ $value =~ ^[0-9]+$ ]] || die "$name must be a number, got '$value'"
    done
    ((KAFKA_PORT > 0 && KAFKA_PORT < 65536)) || die "KAFKA_PORT out of range: $KAFKA_PORT"
    ((KAFKA_CONTROLLER_PORT > 0 && KAFKA_CONTROLLER_PORT < 65536)) ||
        die "KAFKA_CONTROLLER_PORT out of range: $KAFKA_CONTROLLER_PORT"
    ((KAFKA_PORT != KAFKA_CONTROLLER_PORT)) || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
    [[ $KAFKA_AUTO_CREATE_TOPICS == true || $KAFKA_AUTO_CREATE_TOPICS == false ]] ||
        die "KAFKA_AUTO_CREATE_TOPICS must be true or false"
    [[ -z $KAFKA_PROXIED_PORT && -z $KAFKA_PROXY_PORT ]] ||
        [[ $KAFKA_PROXIED_PORT =~ ^[0-9]+$ && $KAFKA_PROXY_PORT =~ ^[0-9]+$ ]] ||
        die "KAFKA_PROXIED_PORT and KAFKA_PROXY_PORT must both be port numbers"
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

# ------------------------------------------------------------- processes --

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

read_pid() {
    local pid
    [[ -f $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    printf '%s' "$pid"
}

# True if $1 is a live broker started by this script for this data dir.
is_our_broker() {
    local args
    kill -0 "$1" 2>/dev/null || return 1
    if [[ -r /proc/$1/cmdline ]]; then
        args=$(tr '\0' ' ' <"/proc/$1/cmdline") || return 1
    else
        args=$(ps -ww -o args= -p "$1" 2>/dev/null) || return 1
    fi
    [[ $args == *kafka.Kafka* && $args == *"$SERVER_PROPS"* ]]
}

# Our broker's pid, if it is alive.
our_pid() {
    local pid
    pid=$(read_pid) || return 1
    is_our_broker "$pid" || return 1
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

# True if the broker answers a real request (a topic listing).
serving() {
    port_open "$KAFKA_PORT" || return 1
    run_tool org.apache.kafka.tools.TopicCommand kafka-topics.sh \
        --bootstrap-server "$BOOTSTRAP" --command-config "$KAFKA_DATA_DIR/probe.properties" \
        --list >/dev/null 2>&1
}

show_log_tail() {
    if [[ -s $BROKER_LOG ]]; then
        warn "last lines of $BROKER_LOG:"
        tail -n 40 "$BROKER_LOG" | sed 's/^/    /' >&2
    fi
}

# Stop our broker if it runs; returns after it is gone.
stop_broker() {
    local pid waited=0
    pid=$(our_pid) || {
        rm -f "$PID_FILE"
        return 1
    }
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= KAFKA_STOP_TIMEOUT * 10)); then
            warn "broker (pid $pid) ignored SIGTERM for ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$PID_FILE"
    printf '%s' "$pid"
}

# ------------------------------------------------------------- data dir ----

# Empty the data dir, refusing to delete anything this script did not create.
reset_data_dir() {
    local dir=$KAFKA_DATA_DIR
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
}

write_configs() {
    local dir=$KAFKA_DATA_DIR quorum listeners advertised protocols
    listeners="PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT"
    advertised="PLAINTEXT://$HOST:$KAFKA_PORT"
    protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if [[ -n $KAFKA_PROXIED_PORT ]]; then
        listeners+=",PROXIED://$HOST:$KAFKA_PROXIED_PORT"
        advertised+=",PROXIED://$HOST:$KAFKA_PROXY_PORT"
        protocols+=",PROXIED:PLAINTEXT"
    fi
    if use_kafka_home && ! version_at_least "$(running_version)" 3 9; then
        # Before 3.9 there is no dynamic quorum: use a static voter set.
        quorum="controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT"
    else
        quorum="controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT"
    fi
    cat >"$SERVER_PROPS" <<EOF
# Written by scripts/kafka/kafka.sh; regenerated on every start.
process.roles=broker,controller
node.id=1
$quorum
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$dir/kraft-logs
num.partitions=$KAFKA_NUM_PARTITIONS
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=$KAFKA_AUTO_CREATE_TOPICS
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF

    # Admin-client settings for the readiness probe: fail fast, retry here.
    cat >"$dir/probe.properties" <<'EOF'
request.timeout.ms=5000
default.api.timeout.ms=10000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=5000
EOF

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

format_storage() {
    local cid out
    cid=$(new_cluster_id)
    local -a args=(format -t "$cid" -c "$SERVER_PROPS")
    if ! use_kafka_home || version_at_least "$(running_version)" 3 9; then
        args+=(--standalone)
    fi
    if ! out=$(run_tool kafka.tools.StorageTool kafka-storage.sh "${args[@]}" 2>&1); then
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        die "formatting KRaft storage in $KAFKA_DATA_DIR failed"
    fi
}

launch_broker() {
    local -a cmd launcher=()
    if use_kafka_home; then
        export KAFKA_HEAP_OPTS KAFKA_OPTS
        export LOG_DIR="$KAFKA_DATA_DIR/app-logs"
        cmd=("$KAFKA_HOME/bin/kafka-server-start.sh" "$SERVER_PROPS")
    else
        # shellcheck disable=SC2206 # heap/extra options are word lists
        cmd=(java -server $KAFKA_HEAP_OPTS
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
            -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
            -Dlog4j2.configurationFile="$KAFKA_DATA_DIR/log4j2.properties"
            $KAFKA_OPTS
            -cp "$LIBS_DIR/*" kafka.Kafka "$SERVER_PROPS")
    fi
    # Own session and no inherited lock fd, so the broker outlives this
    # script and its terminal; the inner shell writes its pid, then becomes
    # the JVM.
    command -v setsid >/dev/null && launcher=(setsid)
    # shellcheck disable=SC2016 # $$ is for the inner shell
    "${launcher[@]}" nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" "${cmd[@]}" \
        </dev/null >"$BROKER_LOG" 2>&1 9>&- &
    # Wait for the pid file (written by the child right away).
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $PID_FILE ]] && return 0
        sleep 0.05
    done
    die "broker did not start (no pid file)"
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
    local pid now deadline
    warn_bad_kafka_home

    if pid=$(our_pid); then
        if tools_available && serving; then
            say "already running on $BOOTSTRAP (Kafka $(running_version), pid $pid)"
            return 0
        fi
        warn "broker (pid $pid) is running but not serving; restarting it"
        stop_broker >/dev/null || true
    fi
    local port
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_open "$port"; then
            die "$HOST:$port is already in use by another process (not a broker started by this script)"
        fi
    done

    if ! use_kafka_home; then
        command -v java >/dev/null || die "java (17+) is required"
        fetch_libs
    fi

    if [[ ${1:-} == resume ]]; then
        [[ -f $SERVER_PROPS && -e $KAFKA_DATA_DIR/$DATA_MARKER ]] || die "nothing to resume in $KAFKA_DATA_DIR"
    else
        reset_data_dir
        write_configs
        format_storage
    fi
    launch_broker
    pid=$(read_pid) || die "broker did not write its pid file"

    deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            show_log_tail
            die "broker exited during start-up"
        fi
        if serving; then
            break
        fi
        now=$SECONDS
        if ((now >= deadline)); then
            show_log_tail
            stop_broker >/dev/null || true
            die "broker not ready after ${KAFKA_START_TIMEOUT}s (stopped it)"
        fi
        sleep 0.5
    done
    say "ready on $BOOTSTRAP (Kafka $(running_version), pid $pid)"
}

cmd_kill() {
    local pid
    if pid=$(our_pid); then
        kill -KILL "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        rm -f "$PID_FILE"
        say "killed (pid $pid)"
    else
        say "not running"
    fi
}

cmd_stop() {
    local pid
    if pid=$(stop_broker); then
        say "stopped (pid $pid)"
    else
        say "not running"
    fi
}

cmd_status() {
    local pid
    if pid=$(our_pid); then
        if tools_available && serving; then
            say "running on $BOOTSTRAP (Kafka $(running_version), pid $pid)"
            return 0
        fi
        say "pid $pid is alive but not serving on $BOOTSTRAP"
        return 1
    fi
    if tools_available && serving; then
        say "a broker not started by this script serves on $BOOTSTRAP"
        return 0
    fi
    if ! tools_available && port_open "$KAFKA_PORT"; then
        say "$BOOTSTRAP accepts connections (not started by this script; not probed)"
        return 0
    fi
    say "not running on $BOOTSTRAP"
    return 3
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
        cmd_start resume
        ;;
    stop)
        take_lock
        cmd_stop
        ;;
    kill)
        take_lock
        cmd_kill
        ;;
    status) cmd_status ;;
    fetch) cmd_fetch ;;
    -h | --help | help)
        sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
        ;;
    *)
        warn "usage: $0 start|stop|status|fetch|kill|resume"
        exit 2
        ;;
    esac
}

main "$@"
