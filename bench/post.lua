-- wrk script for the nginx ceiling: POST /v1/jobs with a ~200-byte Sidekiq
-- job body (the shape courier sends: the job JSON as read from Redis).
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Courier-Jid"] = "5b1f0c3e9a7d2e4f6a8b0c1d"
wrk.headers["Courier-Queue"] = "default"
wrk.body = '{"retry":true,"queue":"default","class":"NoopJob","args":[12345],"jid":"5b1f0c3e9a7d2e4f6a8b0c1d","created_at":1700000000.1234567,"enqueued_at":1700000000.1234567,"tags":["bench"],"note":"a no-op job body"}'
