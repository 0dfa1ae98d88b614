/* Opens data.txt O_RDONLY|O_TRUNC: Linux truncates it, so it is an output. */
#include <fcntl.h>

int main(void)
{
	return open("data.txt", O_RDONLY | O_TRUNC) < 0;
}
