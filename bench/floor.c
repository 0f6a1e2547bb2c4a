// Floors for bench/run, in C with the same libraries courier uses: what no
// dispatcher built on hiredis + libcurl can beat on this machine.
//
//   floor pickup REDIS_PORT EXECUTOR_PORT N
//     BLPOP queue:default, then POST the job over one kept-alive blocking
//     socket and read the answer, N times: the executor's latency figures are
//     the pickup floor (no fetch bookkeeping, no threads, no libcurl).
//   floor rss
//     Links libcurl (as courier does), calls curl_global_init, prints the
//     resident set in kB: the memory floor of any libcurl-based process.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int pickup(int redisPort, int executorPort, int n) {
    redisContext *redis = redisConnect("127.0.0.1", redisPort);
    if (!redis || redis->err) { fprintf(stderr, "floor: redis connect failed\n"); return 1; }
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(executorPort);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("floor: executor connect"); return 1; }
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char request[65536], answer[4096];
    for (int i = 0; i < n; i++) {
        redisReply *reply = redisCommand(redis, "BLPOP queue:default 10");
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) { fprintf(stderr, "floor: no job within 10 s\n"); return 1; }
        redisReply *job = reply->element[1];
        int len = snprintf(request, sizeof request,
                           "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%.*s",
                           job->len, (int)job->len, job->str);
        if (write(sock, request, len) != len || read(sock, answer, sizeof answer) <= 0) { fprintf(stderr, "floor: executor I/O failed\n"); return 1; }
        freeReplyObject(reply);
    }
    return 0;
}

static int rss(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    while (status && fgets(line, sizeof line, status)) {
        if (strncmp(line, "VmRSS:", 6) == 0) { printf("%ld\n", strtol(line + 6, NULL, 10)); return 0; }
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "pickup") == 0) return pickup(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc == 2 && strcmp(argv[1], "rss") == 0) return rss();
    fprintf(stderr, "usage: floor pickup REDIS_PORT EXECUTOR_PORT N | floor rss\n");
    return 64;
}
