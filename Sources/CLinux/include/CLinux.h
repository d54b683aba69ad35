// Linux system interfaces Swift's Glibc module does not bring in (epoll, eventfd, timerfd)
// and small wrappers for macros and variadic calls Swift cannot call directly.
#ifndef MONTROSE_CLINUX_H
#define MONTROSE_CLINUX_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

// accept4 needs _GNU_SOURCE, which Swift's Glibc import does not define.
int montrose_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
// Makes stdout line-buffered so readiness lines reach a pipe at once.
void montrose_line_buffer_stdout(void);
int montrose_errno(void);
// Raises the soft open-file limit to the hard one; returns the soft limit now in force.
long montrose_raise_open_file_limit(void);
// Current resident set size in bytes, read from /proc/self/statm (0 when unreadable).
long montrose_rss_bytes(void);
// Bytes the kernel holds for a TCP socket that the peer has not acknowledged (SIOCOUTQ: unsent
// and in flight, and a FIN not yet acknowledged); -1 on error.
long montrose_unacknowledged_bytes(int fd);
// Names the calling thread for the kernel (at most 15 bytes are kept): top -H, perf, /proc.
void montrose_name_thread(const char *name);
#endif
