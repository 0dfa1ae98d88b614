/* A child reads reuse.txt and exits; another child then gets the same pid
 * (through /proc/sys/kernel/ns_last_pid, as root) and reads it again. Waits
 * for a byte (or EOF) on stdin first, so a tracer can start watching it.
 * Prints the reused pid; exit 77 when the pid could not be had again. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void read_it(void)
{
	char buf[16];
	int fd = open("reuse.txt", O_RDONLY);
	_exit(fd < 0 || read(fd, buf, sizeof buf) <= 0);
}

int main(void)
{
	char c;
	if (read(0, &c, 1) < 0)
		return 1;
	pid_t first = fork();
	if (first == 0)
		read_it();
	waitpid(first, NULL, 0);
	for (int i = 0; i < 100; i++) {
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
		if (fd < 0 || dprintf(fd, "%d", first - 1) < 0)
			return 77;
		close(fd);
		pid_t again = fork();
		if (again == 0) {
			if (getpid() == first)
				read_it();
			_exit(0);
		}
		waitpid(again, NULL, 0);
		if (again == first) {
			printf("%d\n", first);
			return 0;
		}
	}
	return 77;
}
