/* vfork + exec and posix_spawn: both children must be traced from their first syscall. */
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(void)
{
	int status;
	pid_t pid = vfork();
	if (pid == 0) {
		char *argv[] = {"cp", "a.txt", "vforked.txt", NULL};
		execv("/bin/cp", argv);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	char *argv[] = {"cp", "b.txt", "spawned.txt", NULL};
	if (posix_spawn(&pid, "/bin/cp", NULL, NULL, argv, environ))
		return 1;
	waitpid(pid, &status, 0);
	return 0;
}
