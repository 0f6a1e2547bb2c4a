-- wrk script: POST one pre-signed job body over and over (keep-alive).
-- BODY_FILE holds the job JSON exactly as read from Redis; SIG its
-- Courier-Signature (valid for 300 s, and verified on every request).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.path = os.getenv("BENCH_PATH") or "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Courier-Signature"] = os.getenv("SIG")
