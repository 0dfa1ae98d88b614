/* Waits for a byte (or EOF) on stdin, so a tracer can start watching it, then
 * forks a child that writes child.txt. */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	char c;
	if (read(0, &c, 1) < 0)
		return 1;
	pid_t kid = fork();
	if (kid == 0) {
		int fd = open("child.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		_exit(fd < 0 || write(fd, "child\n", 6) != 6);
	}
	int status;
	waitpid(kid, &status, 0);
	return status != 0;
}
