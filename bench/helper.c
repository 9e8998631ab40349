/*
 * Timing helpers for bench/run. One small C program, so that nothing stands between
 * the measurement and the init being measured (no runtime, no interpreter). Every
 * time is read from CLOCK_MONOTONIC.
 *
 *   helper spawn N CMD...            run CMD N times (fork, exec, wait; output
 *                                    discarded); print the mean microseconds per run
 *   helper each N CMD...             run CMD N times, one after another; print each
 *                                    run's microseconds, one per line, and fail when a
 *                                    run exits other than 0
 *   helper signal-latency N CMD...   CMD is an init whose child is `helper usr1-child`;
 *                                    send the init SIGUSR1 N times, one at a time, and
 *                                    print each delay until the child's handler ran (ns)
 *   helper usr1-child                the child: reports each SIGUSR1 on fd 3
 *   helper shutdown CMD...           CMD is an init running `helper sidecar` and then
 *                                    `helper primary`; print ns from the primary's exit
 *                                    until the init has exited
 *   helper sidecar                   leaves at once on SIGTERM; says it is ready on fd 4
 *   helper primary                   waits for the sidecar (fd 5), notes the time on
 *                                    fd 3, and exits 0
 *   helper lines BYTES               write BYTES of 100-byte lines (99 letters and a
 *                                    newline) to stdout, 64 KiB per write: a producer
 *                                    that costs next to nothing, for output throughput
 *   helper orphans N                 run as an init's child in a new PID namespace:
 *                                    make N orphans, let them all exit at once, and
 *                                    print ns until none is left unreaped (the machine
 *                                    should be otherwise quiet: other tasks starting
 *                                    meanwhile would be counted)
 */
#define _GNU_SOURCE
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void read_exact(int fd, void *buffer, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, (char *)buffer + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("read");
        done += (size_t)n;
    }
}

/* Starts argv with fd 3 = report (and fds 4, 5 = a pipe, when given); output discarded. */
static pid_t start(char **argv, int report, const int *ready, int quiet) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (report >= 0 && dup2(report, 3) < 0) _exit(126);
        if (ready && (dup2(ready[1], 4) < 0 || dup2(ready[0], 5) < 0)) _exit(126);
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int spawn(int n, char **argv) {
    int64_t begin = now_ns();
    for (int i = 0; i < n; i++) {
        int status;
        pid_t pid = start(argv, -1, NULL, 1);
        if (waitpid(pid, &status, 0) < 0) die("waitpid");
    }
    printf("%.1f\n", (double)(now_ns() - begin) / n / 1000.0);
    return 0;
}

static int each(int n, char **argv) {
    for (int i = 0; i < n; i++) {
        int status;
        int64_t begin = now_ns();
        pid_t pid = start(argv, -1, NULL, 1);
        if (waitpid(pid, &status, 0) < 0) die("waitpid");
        int64_t took = now_ns() - begin;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "helper each: run %d of %s exited with status %d\n", i + 1, argv[0], status);
            return 1;
        }
        printf("%.1f\n", (double)took / 1000.0);
    }
    return 0;
}

static void on_usr1(int signo) {
    (void)signo;
    int64_t t = now_ns();
    (void)!write(3, &t, sizeof t);
}

static int usr1_child(void) {
    struct sigaction action = {0};
    action.sa_handler = on_usr1;
    sigaction(SIGUSR1, &action, NULL);
    int64_t ready = 0;
    (void)!write(3, &ready, sizeof ready);
    for (;;) pause();
    return 0; /* not reached */
}

static int signal_latency(int n, char **argv) {
    int report[2];
    if (pipe(report) < 0) die("pipe");
    pid_t init = start(argv, report[1], NULL, 1);
    close(report[1]);
    int64_t t;
    read_exact(report[0], &t, sizeof t); /* the child's handler is in place */
    for (int i = 0; i < n; i++) {
        int64_t sent = now_ns();
        if (kill(init, SIGUSR1) < 0) die("kill");
        read_exact(report[0], &t, sizeof t);
        printf("%lld\n", (long long)(t - sent));
    }
    kill(init, SIGKILL);
    waitpid(init, NULL, 0);
    return 0;
}

static void on_term(int signo) {
    (void)signo;
    _exit(0);
}

static int sidecar(void) {
    struct sigaction action = {0};
    action.sa_handler = on_term;
    sigaction(SIGTERM, &action, NULL);
    (void)!write(4, "r", 1);
    for (;;) pause();
    return 0; /* not reached */
}

static int primary(void) {
    char byte;
    read_exact(5, &byte, 1);
    int64_t t = now_ns();
    (void)!write(3, &t, sizeof t);
    return 0;
}

static int shutdown_latency(char **argv) {
    int report[2], ready[2];
    if (pipe(report) < 0 || pipe(ready) < 0) die("pipe");
    pid_t init = start(argv, report[1], ready, 1);
    close(report[1]);
    close(ready[0]);
    close(ready[1]);
    int64_t exited;
    read_exact(report[0], &exited, sizeof exited);
    if (waitpid(init, NULL, 0) < 0) die("waitpid");
    printf("%lld\n", (long long)(now_ns() - exited));
    return 0;
}

/* Tasks of the whole machine, zombies included until they are reaped: the total of
 * /proc/loadavg's "running/total" field. One short read, where listing /proc with ten
 * thousand entries would take milliseconds and CPU from the init being measured. */
static long tasks(void) {
    char text[128];
    int fd = open("/proc/loadavg", O_RDONLY);
    if (fd < 0) die("/proc/loadavg");
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    char *slash = strchr(text, '/');
    return slash ? strtol(slash + 1, NULL, 10) : -1;
}

static int orphans(int n) {
    int release[2];
    if (pipe(release) < 0) die("pipe");
    long baseline = tasks();
    pid_t parent = fork();
    if (parent < 0) die("fork");
    if (parent == 0) {
        for (int i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid < 0) _exit(1);
            if (pid == 0) {
                char byte;
                close(release[1]);
                (void)!read(release[0], &byte, 1);
                _exit(0);
            }
        }
        _exit(0); /* its children are orphans now, adopted by the init */
    }
    int status;
    waitpid(parent, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "helper: could not make %d orphans\n", n);
        return 1;
    }
    close(release[0]);
    int64_t begin = now_ns();
    close(release[1]); /* every orphan's read returns: they all exit now */
    /* Back to the tasks there were before: every orphan has been reaped. */
    while (tasks() > baseline) {
        if (now_ns() - begin > 60 * (int64_t)1000000000) {
            fprintf(stderr, "helper: orphans still unreaped after 60 s (or other tasks started)\n");
            return 1;
        }
        sched_yield();
    }
    printf("%lld\n", (long long)(now_ns() - begin));
    return 0;
}

/* BYTES of 100-byte lines to stdout, in 64 KiB writes (65,500 bytes: whole lines). */
static int lines(long long bytes) {
    static char block[65500];
    for (size_t i = 0; i < sizeof block; i++) block[i] = (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
    while (bytes > 0) {
        size_t want = bytes < (long long)sizeof block ? (size_t)bytes : sizeof block;
        size_t done = 0;
        while (done < want) {
            ssize_t n = write(1, block + done, want - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) die("write");
            done += (size_t)n;
        }
        bytes -= (long long)want;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "spawn") == 0) return spawn(atoi(argv[2]), argv + 3);
    if (argc >= 4 && strcmp(argv[1], "each") == 0) return each(atoi(argv[2]), argv + 3);
    if (argc >= 4 && strcmp(argv[1], "signal-latency") == 0) return signal_latency(atoi(argv[2]), argv + 3);
    if (argc == 2 && strcmp(argv[1], "usr1-child") == 0) return usr1_child();
    if (argc >= 3 && strcmp(argv[1], "shutdown") == 0) return shutdown_latency(argv + 2);
    if (argc == 2 && strcmp(argv[1], "sidecar") == 0) return sidecar();
    if (argc == 2 && strcmp(argv[1], "primary") == 0) return primary();
    if (argc == 3 && strcmp(argv[1], "orphans") == 0) return orphans(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "lines") == 0) return lines(atoll(argv[2]));
    fprintf(stderr, "usage: see the comment at the top of bench/helper.c\n");
    return 2;
}
