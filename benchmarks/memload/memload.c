/* memload: the loads behind benchmarks/memory-after-load.sh and benchmarks/soak.sh.
 *
 *   memload stall TARGET [-c CONNS] [-b BYTES] [--settle MS] [--sync | --hold SEC]
 *       CONNS connections that send and never read (stalled readers). Each writes up to BYTES; once no
 *       connection has made progress for MS milliseconds, prints "stalled <conns> <MiB sent>" and holds them
 *       (until a line on stdin with --sync, else HOLD seconds), then closes them all and prints "closed".
 *   memload churn TARGET [-c CONNS] [-s SIZE] [-m MSGS] [-d SEC] [--stall-every K] [-i SEC]
 *       CONNS connections at once, each: connect, MSGS echo round trips of SIZE bytes (every byte checked),
 *       close, connect again. With --stall-every K, every K-th connection instead sends 1 MiB without
 *       reading and closes (a reset), as a misbehaving client does. Per-interval counts go to stderr.
 *   memload udp HOST:PORT [-p PORTS] [-w WINDOW] [-s SIZE] [-d SEC] [-r RATE] [-i SEC]
 *       PORTS UDP sockets, each its own source port, taking turns: WINDOW of them have one datagram
 *       in flight at a time, at most RATE datagrams per second (default: no limit); each echo is checked
 *       (socket id, sequence, pattern). A datagram not answered within 250 ms counts as lost.
 *
 * TARGET is tcp:HOST:PORT or unix:/path. Loopback only by intent: this is a benchmark load, bounded by
 * its duration. Exit status: 0, 1 when an echo was wrong, 2 for bad arguments or setup failures.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if ((long)rl.rlim_max < want) {
        rl.rlim_max = (rlim_t)want; /* works as root; otherwise the soft limit below is what we get */
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* ---------- addresses ---------- */

static struct sockaddr_storage target_addr;
static socklen_t target_len;
static int target_family;

static void parse_ip(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host)
        fail("bad address '%s' (want HOST:PORT)", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    int port = atoi(colon + 1);
    memset(&target_addr, 0, sizeof target_addr);
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = 0;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)&target_addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&target_addr;
    if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        target_len = sizeof *v4;
        target_family = AF_INET;
    } else if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        target_len = sizeof *v6;
        target_family = AF_INET6;
    } else {
        fail("not an IP address: '%s'", h);
    }
}

static void parse_target(const char *text)
{
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&target_addr;
        memset(un, 0, sizeof *un);
        un->sun_family = AF_UNIX;
        if (strlen(text + 5) >= sizeof un->sun_path)
            fail("socket path too long: %s", text + 5);
        strcpy(un->sun_path, text + 5);
        target_len = sizeof *un;
        target_family = AF_UNIX;
    } else if (strncmp(text, "tcp:", 4) == 0) {
        parse_ip(text + 4);
    } else {
        fail("bad target '%s' (want tcp:HOST:PORT or unix:/path)", text);
    }
}

static int open_stream(void)
{
    int fd = socket(target_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (target_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, (struct sockaddr *)&target_addr, target_len) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Byte i of connection c's stream: a pattern that differs per connection, so a crossed echo shows. */
static inline uint8_t pattern(uint32_t c, uint64_t i) { return (uint8_t)((i * 31u) + c * 7u + (i >> 8)); }

/* ---------- stall ---------- */

static int run_stall(int conns, long long bytes, int settle_ms, int sync, double hold)
{
    static uint8_t chunk[65536];
    int *fds = calloc((size_t)conns, sizeof *fds);
    long long *sent = calloc((size_t)conns, sizeof *sent);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int open_count = 0;
    for (int i = 0; i < conns; i++) {
        fds[i] = open_stream();
        if (fds[i] < 0)
            fail("connect %d failed: %s", i, strerror(errno));
        struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        open_count++;
    }
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (uint8_t)(i * 13u);

    double last_progress = now_s();
    struct epoll_event events[256];
    int done = 0;
    while (done < conns && (now_s() - last_progress) * 1000.0 < settle_ms) {
        int n = epoll_wait(ep, events, 256, 50);
        for (int k = 0; k < n; k++) {
            int i = (int)events[k].data.u32;
            if (fds[i] < 0)
                continue;
            if (events[k].events & (EPOLLERR | EPOLLHUP)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                done++;
                continue;
            }
            while (sent[i] < bytes) {
                size_t want = sizeof chunk;
                if ((long long)want > bytes - sent[i])
                    want = (size_t)(bytes - sent[i]);
                ssize_t w = send(fds[i], chunk, want, MSG_NOSIGNAL);
                if (w <= 0)
                    break;
                sent[i] += w;
                last_progress = now_s();
            }
            if (sent[i] >= bytes) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                done++;
            }
        }
    }
    long long total = 0;
    for (int i = 0; i < conns; i++)
        total += sent[i];
    printf("stalled %d %.1f\n", open_count, (double)total / (1 << 20));
    fflush(stdout);
    if (sync) {
        char line[64];
        if (!fgets(line, sizeof line, stdin)) {
            /* stdin closed: close now */
        }
    } else {
        struct timespec ts = { .tv_sec = (time_t)hold, .tv_nsec = (long)((hold - (time_t)hold) * 1e9) };
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < conns; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    printf("closed\n");
    fflush(stdout);
    return 0;
}

/* ---------- churn ---------- */

struct conn {
    int fd;
    uint32_t id;     /* connection number, for the pattern */
    int msgs_left;
    int stall;       /* a misbehaving client: sends and never reads, then resets */
    long long out;   /* bytes sent of the current message (stall: of the 1 MiB) */
    long long in;    /* bytes of the current message echoed and checked */
    int connected;
};

static long long c_cycles, c_msgs, c_errors, c_mismatch, c_stalls;

static void conn_start(int ep, struct conn *c, uint32_t id, int msgs, int stall)
{
    c->fd = open_stream();
    c->id = id;
    c->msgs_left = msgs;
    c->stall = stall;
    c->out = c->in = 0;
    c->connected = 0;
    if (c->fd < 0) {
        c_errors++;
        return;
    }
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_end(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int run_churn(int conns, int size, int msgs, double seconds, int stall_every, double interval)
{
    raise_nofile(conns + 64);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    uint8_t *buf = malloc(65536);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    uint32_t next_id = 0;
    for (int i = 0; i < conns; i++) {
        next_id++;
        conn_start(ep, &cs[i], next_id, msgs, stall_every > 0 && next_id % (uint32_t)stall_every == 0);
    }
    const long long stall_bytes = 1 << 20;
    double start = now_s(), end = start + seconds, next_report = start + interval;
    long long last_cycles = 0, last_msgs = 0;
    struct epoll_event events[256];
    while (now_s() < end) {
        int n = epoll_wait(ep, events, 256, 20);
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (c->fd < 0)
                continue;
            int finished = 0, broken = 0;
            if (events[k].events & (EPOLLERR | EPOLLHUP))
                broken = 1;
            if (!broken && c->stall) {
                int blocked = 0;
                while (c->out < stall_bytes) {
                    ssize_t w = send(c->fd, buf, (size_t)(stall_bytes - c->out > 65536 ? 65536 : stall_bytes - c->out), MSG_NOSIGNAL);
                    if (w <= 0) {
                        blocked = w < 0 && errno == EAGAIN;
                        broken = !blocked;
                        break;
                    }
                    c->out += w;
                }
                /* Sent all it could without reading: leave with the echo unread, so the server sees a reset. */
                if (!broken && (c->out >= stall_bytes || (blocked && c->out > 0))) {
                    struct linger lg = { 1, 0 };
                    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                    c_stalls++;
                    finished = 1;
                }
            } else if (!broken) {
                c->connected = 1;
                while (c->out < size) {
                    for (int j = 0; j < size - c->out && j < 65536; j++)
                        buf[j] = pattern(c->id, (uint64_t)(c->msgs_left * size + c->out + j));
                    ssize_t w = send(c->fd, buf, (size_t)(size - c->out > 65536 ? 65536 : size - c->out), MSG_NOSIGNAL);
                    if (w <= 0)
                        break;
                    c->out += w;
                }
                while (c->in < c->out) {
                    ssize_t r = recv(c->fd, buf, (size_t)(c->out - c->in > 65536 ? 65536 : c->out - c->in), 0);
                    if (r == 0) {
                        broken = 1;
                        break;
                    }
                    if (r < 0) {
                        if (errno != EAGAIN)
                            broken = 1;
                        break;
                    }
                    for (ssize_t j = 0; j < r; j++)
                        if (buf[j] != pattern(c->id, (uint64_t)(c->msgs_left * size + c->in + j))) {
                            c_mismatch++;
                            broken = 1;
                            break;
                        }
                    c->in += r;
                }
                if (!broken && c->in == size) {
                    c_msgs++;
                    c->in = c->out = 0;
                    if (--c->msgs_left == 0)
                        finished = 1;
                }
            }
            if (broken)
                c_errors++;
            if (finished || broken) {
                conn_end(c);
                c_cycles += finished;
                next_id++;
                conn_start(ep, c, next_id, msgs, stall_every > 0 && next_id % (uint32_t)stall_every == 0);
            }
        }
        double t = now_s();
        if (interval > 0 && t >= next_report) {
            fprintf(stderr, "t=%.0f cycles/s=%.0f msgs/s=%.0f errors=%lld mismatch=%lld stalls=%lld\n", t - start,
                    (double)(c_cycles - last_cycles) / interval, (double)(c_msgs - last_msgs) / interval,
                    c_errors, c_mismatch, c_stalls);
            last_cycles = c_cycles;
            last_msgs = c_msgs;
            next_report += interval;
        }
    }
    for (int i = 0; i < conns; i++)
        conn_end(&cs[i]);
    printf("churn conns=%d cycles=%lld msgs=%lld stalls=%lld errors=%lld mismatch=%lld seconds=%.0f\n", conns,
           c_cycles, c_msgs, c_stalls, c_errors, c_mismatch, seconds);
    return c_mismatch ? 1 : 0;
}

/* ---------- udp ---------- */

struct udp_sock {
    int fd;
    uint32_t seq;
    int slot;       /* the window slot it is in flight in, or -1 */
    double sent_at;
};

static struct udp_sock *us;
static int *ring;   /* ring[k]: the socket in flight in window slot k, or -1 */
static int udp_ports, udp_size, udp_next;
static double udp_rate, udp_start;
static long long udp_sent;

/* Gives window slot k to the next socket in turn, unless that one is still in flight (then the slot waits). */
static void udp_send(int k)
{
    struct udp_sock *s = &us[udp_next];
    if (s->slot >= 0 || (udp_rate > 0 && (double)udp_sent >= udp_rate * (now_s() - udp_start))) {
        ring[k] = -1; /* the slot waits: the next socket is still in flight, or the rate is used up */
        return;
    }
    udp_sent++;
    uint8_t out[2048];
    s->seq++;
    uint32_t id = (uint32_t)udp_next;
    memcpy(out, &id, 4);
    memcpy(out + 4, &s->seq, 4);
    for (int j = 8; j < udp_size; j++)
        out[j] = pattern(id, s->seq + (uint64_t)j);
    /* A refused send counts as lost when its timeout passes, like a datagram the network dropped. */
    (void)send(s->fd, out, (size_t)udp_size, 0);
    s->sent_at = now_s();
    s->slot = k;
    ring[k] = udp_next;
    udp_next = (udp_next + 1) % udp_ports;
}

static int run_udp(int ports, int window, int size, double seconds, double rate, double interval)
{
    udp_rate = rate;
    if (size < 8)
        size = 8;
    if (window > ports)
        window = ports;
    udp_ports = ports;
    udp_size = size;
    raise_nofile(ports + 64);
    us = calloc((size_t)ports, sizeof *us);
    ring = malloc(sizeof(int) * (size_t)window);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < ports; i++) {
        int fd = socket(target_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            fail("socket %d: %s (raise the descriptor limit)", i, strerror(errno));
        if (connect(fd, (struct sockaddr *)&target_addr, target_len) != 0)
            fail("connect: %s", strerror(errno));
        us[i].fd = fd;
        us[i].slot = -1;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    long long answered = 0, lost = 0, mismatch = 0, last_answered = 0;
    double start = now_s(), end = start + seconds, next_report = start + interval;
    udp_start = start;
    for (int k = 0; k < window; k++)
        udp_send(k);
    struct epoll_event events[256];
    uint8_t in[2048];
    while (now_s() < end) {
        int n = epoll_wait(ep, events, 256, 10);
        for (int e = 0; e < n; e++) {
            int i = (int)events[e].data.u32;
            ssize_t r;
            while ((r = recv(us[i].fd, in, sizeof in, 0)) >= 0) {
                uint32_t id, seq;
                memcpy(&id, in, 4);
                memcpy(&seq, in + 4, 4);
                int good = r == size && id == (uint32_t)i;
                for (int j = 8; good && j < size; j++)
                    good = in[j] == pattern((uint32_t)i, seq + (uint64_t)j);
                if (!good) {
                    mismatch++;
                    continue;
                }
                if (seq != us[i].seq || us[i].slot < 0)
                    continue; /* late: already counted as lost */
                answered++;
                int k = us[i].slot;
                us[i].slot = -1;
                udp_send(k);
            }
        }
        double t = now_s();
        for (int k = 0; k < window; k++) {
            int i = ring[k];
            if (i >= 0 && t - us[i].sent_at > 0.25) {
                lost++;
                us[i].slot = -1;
                i = -1;
            }
            if (i < 0)
                udp_send(k);
        }
        if (interval > 0 && t >= next_report) {
            fprintf(stderr, "t=%.0f answered/s=%.0f lost=%lld mismatch=%lld\n", t - start,
                    (double)(answered - last_answered) / interval, lost, mismatch);
            last_answered = answered;
            next_report += interval;
        }
    }
    printf("udp ports=%d window=%d answered=%lld lost=%lld mismatch=%lld seconds=%.0f\n", ports, window, answered, lost,
           mismatch, seconds);
    for (int i = 0; i < ports; i++)
        close(us[i].fd);
    return mismatch ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        fail("usage: memload stall|churn|udp TARGET [options] (see the top of memload.c)");
    const char *mode = argv[1];
    const char *target = argv[2];
    int conns = 200, size = 4096, msgs = 16, settle = 1000, sync = 0, stall_every = 0, ports = 20000, window = 256;
    long long bytes = 4 << 20;
    double seconds = 60, hold = 5, interval = 0, rate = 0;
    static struct option opts[] = {
        { "conns", required_argument, 0, 'c' },   { "bytes", required_argument, 0, 'b' },
        { "size", required_argument, 0, 's' },    { "msgs", required_argument, 0, 'm' },
        { "seconds", required_argument, 0, 'd' }, { "settle", required_argument, 0, 'S' },
        { "sync", no_argument, 0, 'y' },          { "hold", required_argument, 0, 'H' },
        { "stall-every", required_argument, 0, 'k' }, { "interval", required_argument, 0, 'i' },
        { "ports", required_argument, 0, 'p' },   { "window", required_argument, 0, 'w' },
        { "rate", required_argument, 0, 'r' },    { 0, 0, 0, 0 },
    };
    optind = 3;
    int o;
    while ((o = getopt_long(argc, argv, "c:b:s:m:d:i:p:w:r:", opts, NULL)) != -1) {
        switch (o) {
        case 'c': conns = atoi(optarg); break;
        case 'b': bytes = atoll(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'm': msgs = atoi(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case 'S': settle = atoi(optarg); break;
        case 'y': sync = 1; break;
        case 'H': hold = atof(optarg); break;
        case 'k': stall_every = atoi(optarg); break;
        case 'i': interval = atof(optarg); break;
        case 'p': ports = atoi(optarg); break;
        case 'w': window = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        default: fail("unknown option");
        }
    }
    if (size <= 0 || size > 65536 || conns <= 0 || msgs <= 0 || ports <= 0 || window <= 0)
        fail("bad option value");
    if (strcmp(mode, "udp") == 0) {
        parse_ip(strncmp(target, "udp:", 4) == 0 ? target + 4 : target);
        if (size > 2048)
            fail("udp: --size at most 2048");
        return run_udp(ports, window, size, seconds, rate, interval);
    }
    parse_target(target);
    if (strcmp(mode, "stall") == 0) {
        raise_nofile(conns + 64);
        return run_stall(conns, bytes, settle, sync, hold);
    }
    if (strcmp(mode, "churn") == 0)
        return run_churn(conns, size, msgs, seconds, stall_every, interval);
    fail("unknown mode '%s'", mode);
    return 2;
}
