#define _GNU_SOURCE
#include <string.h>
#include <sys/prctl.h>
#include "CLinux.h"
#include <stdio.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

int montrose_errno(void) { return errno; }

long montrose_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long pages = 0, rss = 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

int montrose_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

void montrose_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

long montrose_raise_open_file_limit(void) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
        getrlimit(RLIMIT_NOFILE, &lim);
    }
    return (long)lim.rlim_cur;
}

long montrose_unacknowledged_bytes(int fd) {
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) != 0) return -1;
    return n;
}

void montrose_name_thread(const char *name) {
    char buf[16];
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    prctl(PR_SET_NAME, buf, 0, 0, 0);
}
