// SQLite for Swift. SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift
// cannot import: these wrappers bind text and blobs with it (SQLite copies the bytes).
// sqlite3_config is variadic, which Swift cannot call: a wrapper sets the one option we use.
#ifndef MONTROSE_CSQLITE_SHIM_H
#define MONTROSE_CSQLITE_SHIM_H
#include <sqlite3.h>

static inline int montrose_sqlite3_bind_text(sqlite3_stmt *s, int i, const char *text, int n) {
    return sqlite3_bind_text(s, i, text, n, SQLITE_TRANSIENT);
}
static inline int montrose_sqlite3_bind_blob(sqlite3_stmt *s, int i, const void *bytes, int n) {
    return sqlite3_bind_blob(s, i, bytes, n, SQLITE_TRANSIENT);
}
/* SQLite's memory statistics take a process-wide mutex on every allocation and free, which
   every connection's thread contends for; the hub never reads them. Only before SQLite's first
   use: afterwards it returns SQLITE_MISUSE and changes nothing. */
static inline int montrose_sqlite3_memory_statistics_off(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
#endif
