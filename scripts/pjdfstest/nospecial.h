/* Build pjdfstest with this header (see docs/testing.md, "POSIX conformance"):
 *   make pjdfstest CFLAGS="-g -O2 -include nospecial.h"
 * and the suite then runs as on a filesystem that cannot make FIFOs, devices or sockets. */
/* A filesystem that cannot make special files (as over SFTP): the kernel's own checks
 * (existence, permissions, path) run as for any create, then the filesystem says EPERM. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
static int ns_refuse_at(int dfd, const char *path) {
	int fd = openat(dfd, path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0) return -1;
	close(fd); unlinkat(dfd, path, 0); errno = EPERM; return -1;
}
static int ns_bind(int s, const struct sockaddr *a, socklen_t l) {
	(void)s; (void)l;
	if (a->sa_family == AF_UNIX) return ns_refuse_at(AT_FDCWD, ((const struct sockaddr_un *)a)->sun_path);
	errno = EPERM; return -1;
}
#define mkfifo(p, m) ((void)(m), ns_refuse_at(AT_FDCWD, (p)))
#define mkfifoat(d, p, m) ((void)(m), ns_refuse_at((d), (p)))
#define mknod(p, m, dev) ((void)(m), (void)(dev), ns_refuse_at(AT_FDCWD, (p)))
#define mknodat(d, p, m, dev) ((void)(m), (void)(dev), ns_refuse_at((d), (p)))
#define bind(s, a, l) ns_bind((s), (a), (l))
