// libpq for Swift: the client library of PostgreSQL (pkg-config gives -I/usr/include/postgresql).
#ifndef MONTROSE_CPOSTGRES_SHIM_H
#define MONTROSE_CPOSTGRES_SHIM_H
#include <libpq-fe.h>
#endif
