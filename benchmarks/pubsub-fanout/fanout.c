// Pub/sub fan-out load: 1 publisher, N subscribers of one channel, against any RESP2 server (redis-server,
// examples/KeyValueHost). One thread, epoll, non-blocking sockets, no allocation once running.
//
// The publisher keeps --window PUBLISH commands outstanding (a new one goes out for each integer reply). Each
// payload starts with the send time (CLOCK_MONOTONIC, ns, 16 hex digits); each subscriber parses every pushed
// message whole (*3 $7 message $len channel $len payload) and records now - sent time in a histogram. Each PUBLISH
// reply must equal N, and after the run every subscriber must have received every message published to it.
//
//   fanout (--port P | --socket PATH) [--subscribers 100] [--seconds 5] [--warmup 2] [--window 16] [--size 32]
// Prints one line: delivered_per_s=... published_per_s=... p50_us=... p99_us=... p999_us=... max_us=... errors=...
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF (256 * 1024)
#define BUCKETS 200000 /* 1 us buckets up to 200 ms; above that, the overflow bucket */

typedef struct {
    int fd;
    char *buf;
    size_t len;
    long long received; /* messages, whole run */
    int subscribed;
} conn_t;

static long long hist[BUCKETS + 1];
static long long samples;
static long long max_ns;
static int measuring;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int connect_to(int port, const char *path) {
    int fd;
    if (path) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect unix");
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect tcp");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Reads "<digits>\r\n" at p; returns the position after it, or NULL when incomplete. */
static const char *number_line(const char *p, const char *end, long long *value) {
    long long v = 0;
    int neg = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    if (end - p < 2) return NULL;
    if (p[0] != '\r' || p[1] != '\n') { fprintf(stderr, "bad number line\n"); exit(2); }
    *value = neg ? -v : v;
    return p + 2;
}

/* Parses one RESP array of bulk strings at p; fills up to 4 parts. Returns the end, or NULL when incomplete. */
static const char *parse_array(const char *p, const char *end, const char **parts, long long *lens, long long *count) {
    if (p >= end) return NULL;
    if (*p != '*') {
        fprintf(stderr, "expected an array, got '%c'\n", *p);
        exit(2);
    }
    p = number_line(p + 1, end, count);
    if (!p) return NULL;
    for (long long i = 0; i < *count; i++) {
        if (p >= end) return NULL;
        if (*p == ':') { /* the subscription count in a subscribe reply */
            long long v;
            p = number_line(p + 1, end, &v);
            if (!p) return NULL;
            if (i < 4) { parts[i] = NULL; lens[i] = v; }
            continue;
        }
        if (*p != '$') { fprintf(stderr, "expected a bulk string, got '%c'\n", *p); exit(2); }
        long long n;
        p = number_line(p + 1, end, &n);
        if (!p || end - p < n + 2) return NULL;
        if (i < 4) { parts[i] = p; lens[i] = n; }
        p += n + 2;
    }
    return p;
}

static void record(uint64_t sent) {
    if (!measuring) return;
    uint64_t d = now_ns() - sent;
    long long us = (long long)(d / 1000);
    hist[us < BUCKETS ? us : BUCKETS]++;
    samples++;
    if ((long long)d > max_ns) max_ns = (long long)d;
}

static double percentile(double q) {
    long long target = (long long)(q * (double)samples);
    long long seen = 0;
    for (int i = 0; i <= BUCKETS; i++) {
        seen += hist[i];
        if (seen > target) return i;
    }
    return BUCKETS;
}

int main(int argc, char **argv) {
    int port = 0, subscribers = 100, seconds = 5, warmup = 2, window = 16, size = 32;
    const char *path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--socket")) path = argv[i + 1];
        else if (!strcmp(argv[i], "--subscribers")) subscribers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--window")) window = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if ((!port && !path) || size < 16 || window < 1 || subscribers < 1) {
        fprintf(stderr, "usage: fanout (--port P | --socket PATH) [--subscribers N] [--seconds S] [--warmup S] [--window K] [--size BYTES>=16]\n");
        return 2;
    }

    int ep = epoll_create1(0);
    conn_t *subs = calloc((size_t)subscribers, sizeof *subs);
    static const char subscribe[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$7\r\nfan-out\r\n";
    for (int i = 0; i < subscribers; i++) {
        subs[i].fd = connect_to(port, path);
        subs[i].buf = malloc(BUF);
        write_all(subs[i].fd, subscribe, sizeof subscribe - 1);
        fcntl(subs[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev);
    }
    conn_t pub = {.fd = connect_to(port, path), .buf = malloc(BUF)};
    fcntl(pub.fd, F_SETFL, O_NONBLOCK);
    struct epoll_event pev = {.events = EPOLLIN, .data.u32 = (uint32_t)subscribers};
    epoll_ctl(ep, EPOLL_CTL_ADD, pub.fd, &pev);

    /* One PUBLISH command, the payload's first 16 bytes rewritten with the send time for each. */
    char header[64];
    int hlen = snprintf(header, sizeof header, "*3\r\n$7\r\nPUBLISH\r\n$7\r\nfan-out\r\n$%d\r\n", size);
    size_t cmdlen = (size_t)hlen + (size_t)size + 2;
    char *out = malloc(cmdlen * (size_t)window);

    long long published = 0, replies = 0, errors = 0, outstanding = 0;
    int ready = 0, running = 1;
    uint64_t start = 0, measure_from = 0, stop_at = 0;
    struct epoll_event events[256];

    while (running || outstanding > 0) {
        if (ready == subscribers && running) {
            uint64_t t = now_ns();
            if (!start) {
                start = t;
                measure_from = start + (uint64_t)warmup * 1000000000ull;
                stop_at = measure_from + (uint64_t)seconds * 1000000000ull;
            }
            if (!measuring && t >= measure_from) {
                measuring = 1;
                published = replies = 0;
                for (int i = 0; i < subscribers; i++) subs[i].received = 0;
            }
            if (t >= stop_at) running = 0;
            if (running && outstanding < window) {
                size_t n = 0;
                while (outstanding < window) {
                    char *c = out + n;
                    memcpy(c, header, (size_t)hlen);
                    snprintf(c + hlen, 17, "%016llx", (unsigned long long)now_ns());
                    memset(c + hlen + 16, 'p', (size_t)size - 16);
                    c[hlen + size] = '\r';
                    c[hlen + size + 1] = '\n';
                    n += cmdlen;
                    outstanding++;
                    if (measuring) published++;
                }
                write_all(pub.fd, out, n);
            }
        }

        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < n; e++) {
            uint32_t id = events[e].data.u32;
            conn_t *c = id == (uint32_t)subscribers ? &pub : &subs[id];
            ssize_t r = read(c->fd, c->buf + c->len, BUF - c->len);
            if (r == 0) { fprintf(stderr, "connection %u closed by the server\n", id); return 2; }
            if (r < 0) { if (errno == EAGAIN || errno == EINTR) continue; die("read"); }
            c->len += (size_t)r;
            const char *p = c->buf, *end = c->buf + c->len;
            if (c == &pub) {
                long long v;
                const char *q;
                while (p < end && (q = (*p == ':') ? number_line(p + 1, end, &v) : NULL)) {
                    if (v != subscribers) errors++;
                    p = q;
                    outstanding--;
                    if (measuring) replies++;
                }
                if (p < end && *p != ':') { fprintf(stderr, "unexpected publish reply '%c'\n", *p); return 2; }
            } else {
                const char *parts[4];
                long long lens[4], count;
                const char *q;
                while ((q = parse_array(p, end, parts, lens, &count))) {
                    if (!c->subscribed) {
                        if (count != 3 || lens[0] != 9 || memcmp(parts[0], "subscribe", 9)) { fprintf(stderr, "bad subscribe reply\n"); return 2; }
                        c->subscribed = 1;
                        ready++;
                    } else {
                        if (count != 3 || lens[0] != 7 || memcmp(parts[0], "message", 7) || lens[2] != size) {
                            errors++;
                        } else {
                            char ts[17];
                            memcpy(ts, parts[2], 16);
                            ts[16] = 0;
                            record(strtoull(ts, NULL, 16));
                        }
                        if (measuring) c->received++;
                    }
                    p = q;
                }
            }
            c->len = (size_t)(end - p);
            memmove(c->buf, p, c->len);
            if (c->len == BUF) { fprintf(stderr, "a message larger than the read buffer\n"); return 2; }
        }
        if (!running && outstanding > 0 && n == 0) break; /* replies stopped coming: reported as errors below */
    }

    /* Let the last pushes arrive, then check that every subscriber got every publish of the measured window. */
    uint64_t drain_until = now_ns() + 2000000000ull;
    for (;;) {
        long long missing = 0;
        for (int i = 0; i < subscribers; i++) missing += published - subs[i].received;
        if (missing <= 0 || now_ns() > drain_until) { if (missing > 0) errors += missing; break; }
        int n = epoll_wait(ep, events, 256, 50);
        for (int e = 0; e < n; e++) {
            uint32_t id = events[e].data.u32;
            if (id == (uint32_t)subscribers) continue;
            conn_t *c = &subs[id];
            ssize_t r = read(c->fd, c->buf + c->len, BUF - c->len);
            if (r <= 0) continue;
            c->len += (size_t)r;
            const char *p = c->buf, *end = c->buf + c->len, *q, *parts[4];
            long long lens[4], count;
            while ((q = parse_array(p, end, parts, lens, &count))) { c->received++; p = q; }
            c->len = (size_t)(end - p);
            memmove(c->buf, p, c->len);
        }
    }

    long long delivered = 0;
    for (int i = 0; i < subscribers; i++) delivered += subs[i].received;
    printf("delivered_per_s=%.0f published_per_s=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%lld errors=%lld\n",
           (double)delivered / seconds, (double)replies / seconds, percentile(0.50), percentile(0.99), percentile(0.999),
           max_ns / 1000, errors + (outstanding > 0 ? outstanding : 0));
    return errors ? 1 : 0;
}
