// Typed wrappers around libcurl's variadic curl_easy_setopt and
// curl_easy_getinfo, which Swift cannot call directly.
#include "curl_shim.h"

CURLcode courier_easy_set_long(CURL *easy, CURLoption option, long value) {
    return curl_easy_setopt(easy, option, value);
}
CURLcode courier_easy_set_pointer(CURL *easy, CURLoption option, const void *value) {
    return curl_easy_setopt(easy, option, value);
}
CURLcode courier_easy_set_offset(CURL *easy, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(easy, option, value);
}
CURLcode courier_easy_set_write_callback(CURL *easy, courier_curl_write_cb callback) {
    return curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, callback);
}
CURLcode courier_easy_get_long(CURL *easy, CURLINFO info, long *value) {
    return curl_easy_getinfo(easy, info, value);
}
CURLcode courier_easy_get_pointer(CURL *easy, CURLINFO info, void **value) {
    return curl_easy_getinfo(easy, info, value);
}
CURLMcode courier_multi_set_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}
CURLcode courier_easy_set_header_callback(CURL *easy, courier_curl_write_cb callback) {
    return curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, callback);
}
