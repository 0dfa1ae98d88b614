/* Two threads of one process each write their own file. */
#include <pthread.h>
#include <stdio.h>

static void *writer(void *name)
{
	FILE *f = fopen(name, "w");
	if (!f)
		return (void *)1;
	fprintf(f, "written by a thread: %s\n", (char *)name);
	fclose(f);
	return NULL;
}

int main(void)
{
	pthread_t a, b;
	pthread_create(&a, NULL, writer, "thread_a.txt");
	pthread_create(&b, NULL, writer, "thread_b.txt");
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return 0;
}
