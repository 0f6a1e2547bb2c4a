// Typed, non-variadic wrappers around libcurl's variadic calls, which Swift
// cannot import. Each wrapper forwards one argument of one C type.
#ifndef COURIER_CURL_SHIM_H
#define COURIER_CURL_SHIM_H
#include <curl/curl.h>

typedef size_t (*courier_curl_write_cb)(char *data, size_t size, size_t nmemb, void *userdata);

CURLcode courier_easy_set_long(CURL *easy, CURLoption option, long value);
CURLcode courier_easy_set_pointer(CURL *easy, CURLoption option, const void *value);
CURLcode courier_easy_set_offset(CURL *easy, CURLoption option, curl_off_t value);
CURLcode courier_easy_set_write_callback(CURL *easy, courier_curl_write_cb callback);
CURLcode courier_easy_get_long(CURL *easy, CURLINFO info, long *value);
CURLcode courier_easy_get_pointer(CURL *easy, CURLINFO info, void **value);
CURLMcode courier_multi_set_long(CURLM *multi, CURLMoption option, long value);
CURLcode courier_easy_set_header_callback(CURL *easy, courier_curl_write_cb callback);
#endif
