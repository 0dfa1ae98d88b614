/* Opens a file O_RDWR but only reads it: an input, not an output. */
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
	char buf[64];
	int fd = open("data.txt", O_RDWR);
	return fd < 0 || read(fd, buf, sizeof buf) < 0;
}
