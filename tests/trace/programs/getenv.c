/* Reads three variables through libc: getenv, secure_getenv, and one that is not set. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	const char *direct = getenv("ROAR_T_DIRECT");
	const char *secure = secure_getenv("ROAR_T_SECURE");
	const char *unset = getenv("ROAR_T_UNSET");
	for (int i = 0; i < 1000; i++)   /* read again: still one fact */
		direct = getenv("ROAR_T_DIRECT");
	printf("%s %s %s\n", direct ? direct : "-", secure ? secure : "-", unset ? unset : "-");
	return 0;
}
